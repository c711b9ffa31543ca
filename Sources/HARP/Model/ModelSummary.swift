/// Parameter and byte counts of a model, for tables, reports and budget accounting.
public struct ModelSummary: Sendable, Equatable {
    /// All parameters, the embedding and (untied) LM head included.
    public var parameters: Int
    /// Bytes of all weights as stored.
    public var weightBytes: Int
    /// Parameters of the attention blocks (Q, K, V, O and their biases).
    public var attentionParameters: Int
    /// Parameters of the MLP blocks.
    public var mlpParameters: Int

    public init(_ model: Model) {
        let w = model.weights
        var params = w.tokenEmbedding.parameterCount + w.outputNorm.count
        var bytes = w.tokenEmbedding.byteCount + 4 * w.outputNorm.count
        if !model.config.tiedOutput {
            params += w.output.parameterCount
            bytes += w.output.byteCount
        }
        var attention = 0, mlp = 0
        for layer in w.layers {
            attention += layer.attentionParameters
            mlp += layer.mlpParameters
            params += layer.parameterCount
            bytes += layer.byteCount
        }
        if let factors = w.ropeFrequencyFactors {
            params += factors.count
            bytes += 4 * factors.count
        }
        parameters = params
        weightBytes = bytes
        attentionParameters = attention
        mlpParameters = mlp
    }
}
