// Prints, as one JSON object, what llama.cpp computes for a prompt: its token ids (with the
// model's BOS rule, no special-token parsing), the top-10 next-token logits after it, and a
// greedy continuation with each step's top-1 minus top-2 logit margin. Flash attention is off: the
// CPU flash-attention kernel accumulates values in f16, the plain path is the closer reference for a
// runtime that accumulates in f32. The KV cache is f16 (llama.cpp's default) unless KV_TYPE is f32,
// which the F32 seed models use so that nothing is rounded below f32.
// Usage: llama-probe MODEL N_GREEDY PROMPT [KV_TYPE]
#include <llama.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void top_k(const float *logits, int n_vocab, int k, int *ids) {
    for (int i = 0; i < k; i++) ids[i] = -1;
    for (int t = 0; t < n_vocab; t++) {
        for (int i = 0; i < k; i++) {
            if (ids[i] < 0 || logits[t] > logits[ids[i]]) {
                memmove(ids + i + 1, ids + i, sizeof(int) * (size_t)(k - i - 1));
                ids[i] = t;
                break;
            }
        }
    }
}

static void print_json_string(const char *s) {
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c == '\n') printf("\\n");
        else if (c < 0x20) printf("\\u%04x", c);
        else putchar(c);
    }
    putchar('"');
}

int main(int argc, char **argv) {
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s MODEL N_GREEDY PROMPT [f16|f32]\n", argv[0]);
        return 2;
    }
    if (argc == 5 && strcmp(argv[4], "f16") != 0 && strcmp(argv[4], "f32") != 0) {
        fprintf(stderr, "KV_TYPE must be f16 or f32, got %s\n", argv[4]);
        return 2;
    }
    const int kv_f32 = argc == 5 && strcmp(argv[4], "f32") == 0;
    const int n_greedy = atoi(argv[2]);
    const char *prompt = argv[3];
    llama_log_set(NULL, NULL);
    llama_backend_init();
    struct llama_model_params mp = llama_model_default_params();
    struct llama_model *model = llama_model_load_from_file(argv[1], mp);
    if (!model) { fprintf(stderr, "cannot load %s\n", argv[1]); return 1; }
    const struct llama_vocab *vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);

    struct llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 256;
    cp.n_batch = 256;
    cp.n_threads = 2;
    cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    if (kv_f32) {
        cp.type_k = GGML_TYPE_F32;
        cp.type_v = GGML_TYPE_F32;
    }
    struct llama_context *ctx = llama_init_from_model(model, cp);
    if (!ctx) { fprintf(stderr, "cannot create a context\n"); return 1; }

    llama_token tokens[256];
    const int n_prompt = llama_tokenize(vocab, prompt, (int)strlen(prompt), tokens, 256, true, false);
    if (n_prompt <= 0) { fprintf(stderr, "tokenization failed\n"); return 1; }

    printf("{\"prompt\": ");
    print_json_string(prompt);
    printf(", \"prompt_ids\": [");
    for (int i = 0; i < n_prompt; i++) printf("%s%d", i ? ", " : "", tokens[i]);
    printf("]");

    struct llama_batch batch = llama_batch_get_one(tokens, n_prompt);
    if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
    int top[10];
    const float *logits = llama_get_logits_ith(ctx, -1);
    top_k(logits, n_vocab, 10, top);
    printf(", \"top10\": [");
    for (int i = 0; i < 10; i++) printf("%s{\"id\": %d, \"logit\": %.5f}", i ? ", " : "", top[i], logits[top[i]]);
    printf("], \"greedy_ids\": [");

    float margins[256];
    for (int step = 0; step < n_greedy && step < 256; step++) {
        top_k(logits, n_vocab, 2, top);
        margins[step] = logits[top[0]] - logits[top[1]];
        llama_token next = top[0];
        printf("%s%d", step ? ", " : "", next);
        fflush(stdout);
        batch = llama_batch_get_one(&next, 1);
        if (llama_decode(ctx, batch) != 0) { fprintf(stderr, "decode failed\n"); return 1; }
        logits = llama_get_logits_ith(ctx, -1);
    }
    printf("], \"greedy_top1_minus_top2\": [");
    for (int step = 0; step < n_greedy && step < 256; step++) printf("%s%.5f", step ? ", " : "", margins[step]);
    printf("]}\n");

    llama_free(ctx);
    llama_model_free(model);
    llama_backend_free();
    return 0;
}
