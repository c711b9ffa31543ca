/// A loaded model: its structure, weights, and the file they come from. Immutable and `Sendable`,
/// so one instance can serve many concurrent sessions.
public final class Model: Sendable {
    public let file: GGUFFile
    public let config: ModelConfig
    public let weights: ModelWeights
    public let weightFormat: WeightFormat

    public static var supportedArchitectures: [String] { ArchitectureSchema.all.keys.sorted() }

    public convenience init(path: String, weights format: WeightFormat = .native) throws {
        try self.init(file: GGUFFile(path: path), weights: format)
    }

    public init(file: GGUFFile, weights format: WeightFormat = .native) throws {
        let meta = try ModelMetadata(file: file)
        guard let schema = ArchitectureSchema.named(meta.architecture) else {
            throw HARPError.invalidModel(path: file.path, reason: "architecture \(UntrustedText.quoted(meta.architecture)) is not supported (supported: \(Model.supportedArchitectures.joined(separator: ", ")))")
        }
        (config, weights) = try DecoderLoader.load(metadata: meta, schema: schema, tensors: TensorLoader(file: file, format: format))
        self.file = file
        self.weightFormat = format
    }

    /// Builds a model from parts (tests, the pruner's in-memory models).
    public init(file: GGUFFile, config: ModelConfig, weights: ModelWeights, weightFormat: WeightFormat) {
        self.file = file
        self.config = config
        self.weights = weights
        self.weightFormat = weightFormat
    }

    public var path: String { file.path }
}
