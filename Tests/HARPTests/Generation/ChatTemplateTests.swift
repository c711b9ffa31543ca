import Foundation
import Testing
@testable import HARP

/// Chat templates: each family's rendering against the output of the template's own Jinja text
/// (rendered once with Python jinja2 as Hugging Face's `apply_chat_template` sets it up, and checked
/// by hand against the template text), for a one-message prompt, a system + multi-turn prompt, and
/// a history without generation prompt.
@Suite("Chat templates")
struct ChatTemplateTests {
    /// A tokenizer that only knows its BOS/EOS texts and a few marker tokens.
    struct MarkerTokenizer: Tokenizer {
        var bosText: String
        var eosText: String
        var markers: [String] = []
        var vocabularySize: Int { 2 + markers.count }
        var addBOS: Bool { true }
        var bosID: Int32? { 0 }
        var eosID: Int32? { 1 }
        var endOfGenerationIDs: Set<Int32> { [1] }
        func encode(_ text: String, parseSpecial: Bool) -> [Int32] { [] }
        func tokenPiece(_ id: Int32) -> [UInt8] { Array((id == 0 ? bosText : id == 1 ? eosText : "").utf8) }
        func tokenType(_ id: Int32) -> TokenType { .control }
        func tokenID(forText text: String) -> Int32? { markers.firstIndex(of: text).map { Int32($0 + 2) } }
    }

    static let single: [ChatMessage] = [.user("Hello!")]
    static let multi: [ChatMessage] = [.system("You are terse."), .user("Hi"), .assistant("  Hello there. "), .user("What is 2+2?\n")]
    static let history: [ChatMessage] = [.user("Hi"), .assistant("Hello")]

    static func template(_ text: String, bos: String, eos: String) -> ChatTemplate {
        ChatTemplate.recognise(templateText: text, tokenizer: MarkerTokenizer(bosText: bos, eosText: eos))
    }

    static func expectRenderings(_ t: ChatTemplate, family: ChatTemplate.Family, single: String, multi: String?, history: String) throws {
        #expect(t.family == family)
        #expect(t.source == .template)
        #expect(try t.render(Self.single, addGenerationPrompt: true) == single)
        if let multi {
            #expect(try t.render(Self.multi, addGenerationPrompt: true) == multi)
        }
        #expect(try t.render(Self.history, addGenerationPrompt: false) == history)
    }

    @Test("ChatML with a default system prompt (SmolLM2)")
    func smolLM2() throws {
        try Self.expectRenderings(
            Self.template(Self.smollm2Template, bos: "<|im_start|>", eos: "<|im_end|>"), family: .chatML,
            single: "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            multi: "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n  Hello there. <|im_end|>\n<|im_start|>user\nWhat is 2+2?\n<|im_end|>\n<|im_start|>assistant\n",
            history: "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n")
    }

    @Test("ChatML with tools branches and an escaped default system prompt (Qwen2.5, read from the model)")
    func qwen() throws {
        let file = try GGUFFile(path: Self.qwenPath)
        try Self.expectRenderings(
            ChatTemplate.load(from: file, tokenizer: try TokenizerLoader.load(from: file)), family: .chatML,
            single: "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n",
            multi: "<|im_start|>system\nYou are terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n  Hello there. <|im_end|>\n<|im_start|>user\nWhat is 2+2?\n<|im_end|>\n<|im_start|>assistant\n",
            history: "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n")
    }

    @Test("Llama 3")
    func llama3() throws {
        try Self.expectRenderings(
            Self.template(Self.llama3Template, bos: "<|begin_of_text|>", eos: "<|eot_id|>"), family: .llama3,
            single: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            multi: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello there.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            history: "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>")
    }

    @Test("Llama 3.1 (knowledge-date system header)")
    func llama31() throws {
        try Self.expectRenderings(
            Self.template(Self.llama31Template, bos: "<|begin_of_text|>", eos: "<|eot_id|>"), family: .llama3,
            single: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            multi: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello there.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
            history: "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello<|eot_id|>")
    }

    @Test("Gemma 3 (system message prefixes the first user turn)")
    func gemma3() throws {
        try Self.expectRenderings(
            Self.template(Self.gemma3Template, bos: "<bos>", eos: "<eos>"), family: .gemma,
            single: "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n",
            multi: "<bos><start_of_turn>user\nYou are terse.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello there.<end_of_turn>\n<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n",
            history: "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n")
    }

    @Test("Gemma 2 (no system role)")
    func gemma2() throws {
        let t = Self.template(Self.gemma2Template, bos: "<bos>", eos: "<eos>")
        try Self.expectRenderings(
            t, family: .gemma,
            single: "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n", multi: nil,
            history: "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n")
        #expect(throws: ChatTemplateError.unsupportedRole(.system, family: .gemma)) { try t.render(Self.multi, addGenerationPrompt: true) }
    }

    @Test("Mistral v1 (no system role, spaces around [/INST])")
    func mistral1() throws {
        let t = Self.template(Self.mistral1Template, bos: "<s>", eos: "</s>")
        try Self.expectRenderings(t, family: .mistral, single: "<s>[INST] Hello! [/INST]", multi: nil, history: "<s>[INST] Hi [/INST]Hello</s>")
        #expect(throws: ChatTemplateError.self) { try t.render(Self.multi, addGenerationPrompt: true) }
    }

    @Test("Mistral v3 (system message before the last user turn)")
    func mistral3() throws {
        try Self.expectRenderings(
            Self.template(Self.mistral3Template, bos: "<s>", eos: "</s>"), family: .mistral,
            single: "<s>[INST] Hello![/INST]",
            multi: "<s>[INST] Hi[/INST] Hello there.</s>[INST] You are terse.\n\nWhat is 2+2?\n[/INST]",
            history: "<s>[INST] Hi[/INST] Hello</s>")
    }

    @Test("conversations the templates reject")
    func rejected() {
        let t = Self.template(Self.gemma3Template, bos: "<bos>", eos: "<eos>")
        #expect(throws: ChatTemplateError.emptyConversation) { try t.render([], addGenerationPrompt: true) }
        #expect(throws: ChatTemplateError.rolesMustAlternate(family: .gemma)) {
            try t.render([.user("a"), .user("b")], addGenerationPrompt: true)
        }
    }

    @Test("a file without a template: the family from the vocabulary's markers, else a ChatML fallback with a notice")
    func missingTemplate() throws {
        let gemma = ChatTemplate.recognise(templateText: nil, tokenizer: MarkerTokenizer(bosText: "<bos>", eosText: "<eos>", markers: ["<start_of_turn>"]))
        #expect(gemma.family == .gemma)
        #expect(gemma.source == .vocabulary(marker: "<start_of_turn>"))
        #expect(gemma.notice?.contains("<start_of_turn>") == true)
        let none = ChatTemplate.recognise(templateText: nil, tokenizer: MarkerTokenizer(bosText: "<s>", eosText: "</s>"))
        #expect(none.family == .chatML)
        #expect(none.notice?.contains("falling back to ChatML") == true)
        let unknown = Self.template("{% for m in messages %}### {{ m.role }}: {{ m.content }}\n{% endfor %}", bos: "<s>", eos: "</s>")
        #expect(unknown.family == .chatML)
        #expect(unknown.notice?.contains("not one of ChatML, Llama 3, Gemma, Mistral") == true)
        #expect(try unknown.render(Self.single, addGenerationPrompt: true) == "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test("Gemma 3 270M (its file has no template) renders the Gemma format, and its BOS/turn tokens encode as single tokens")
    func gemmaModel() throws {
        let file = try GGUFFile(path: Self.gemmaPath)
        let tokenizer = try TokenizerLoader.load(from: file)
        let t = ChatTemplate.load(from: file, tokenizer: tokenizer)
        #expect(t.family == .gemma)
        let text = try t.render(Self.single, addGenerationPrompt: true)
        #expect(text == "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n")
        let ids = tokenizer.encode(text, parseSpecial: true)
        #expect(ids.first == tokenizer.bosID)
        #expect(ids.contains(tokenizer.tokenID(forText: "<start_of_turn>") ?? -1))
    }

    static let qwenPath = Fixtures.packageRoot.appendingPathComponent("models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").path
    static let gemmaPath = Fixtures.packageRoot.appendingPathComponent("models/gemma-3-270m-q4_k_m.gguf").path

    // Template texts as published with the models (Llama 3.1 and Mistral v3 abridged: their tool-calling branches removed).
    static let smollm2Template = #"""
{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system
You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>
' }}{% endif %}{{'<|im_start|>' + message['role'] + '
' + message['content'] + '<|im_end|>' + '
'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant
' }}{% endif %}
"""#
    static let llama3Template = #"""
{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}
"""#
    static let llama31Template = #"""
{{- bos_token }}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
"""#
    static let gemma3Template = #"""
{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""#
    static let gemma2Template = #"""
{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}
"""#
    static let mistral1Template = #"""
{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}
"""#
    static let mistral3Template = #"""
{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""#

}
