#include "csentencepiece.h"

#include <sentencepiece_processor.h>

#include <cstring>
#include <new>
#include <string>
#include <vector>

struct hsp_processor {
    sentencepiece::SentencePieceProcessor processor;
};

namespace {

void set_error(char *error, size_t error_size, const std::string &message) {
    if (error == nullptr || error_size == 0) return;
    size_t n = message.size() < error_size - 1 ? message.size() : error_size - 1;
    std::memcpy(error, message.data(), n);
    error[n] = '\0';
}

template <typename Load>
hsp_processor *load(Load load_into, char *error, size_t error_size) {
    auto *p = new (std::nothrow) hsp_processor();
    if (p == nullptr) {
        set_error(error, error_size, "out of memory");
        return nullptr;
    }
    const auto status = load_into(p->processor);
    if (!status.ok()) {
        set_error(error, error_size, status.ToString());
        delete p;
        return nullptr;
    }
    return p;
}

bool valid(const hsp_processor *p, int32_t id) {
    return p != nullptr && id >= 0 && id < p->processor.GetPieceSize();
}

}  // namespace

extern "C" {

hsp_processor *hsp_load_file(const char *path, char *error, size_t error_size) {
    return load([&](sentencepiece::SentencePieceProcessor &sp) { return sp.Load(path); }, error, error_size);
}

hsp_processor *hsp_load_serialized(const void *bytes, size_t count, char *error, size_t error_size) {
    const std::string_view serialized(static_cast<const char *>(bytes), count);
    return load([&](sentencepiece::SentencePieceProcessor &sp) { return sp.LoadFromSerializedProto(serialized); },
                error, error_size);
}

void hsp_free(hsp_processor *processor) { delete processor; }

int64_t hsp_encode(const hsp_processor *processor, const char *text, size_t count,
                   int32_t *ids, int64_t capacity, char *error, size_t error_size) {
    std::vector<int> result;
    const auto status = processor->processor.Encode(std::string_view(text, count), &result);
    if (!status.ok()) {
        set_error(error, error_size, status.ToString());
        return -1;
    }
    const int64_t n = static_cast<int64_t>(result.size());
    for (int64_t i = 0; i < n && i < capacity; ++i) ids[i] = static_cast<int32_t>(result[static_cast<size_t>(i)]);
    return n;
}

int32_t hsp_piece_count(const hsp_processor *processor) { return processor->processor.GetPieceSize(); }

const char *hsp_piece(const hsp_processor *processor, int32_t id, size_t *length) {
    if (!valid(processor, id)) return nullptr;
    const std::string &piece = processor->processor.IdToPiece(id);
    *length = piece.size();
    return piece.data();
}

float hsp_score(const hsp_processor *processor, int32_t id) {
    return valid(processor, id) ? processor->processor.GetScore(id) : 0.0f;
}

int32_t hsp_piece_type(const hsp_processor *processor, int32_t id) {
    if (!valid(processor, id)) return 0;
    const auto &sp = processor->processor;
    if (sp.IsUnknown(id)) return 2;
    if (sp.IsControl(id)) return 3;
    if (sp.IsUnused(id)) return 5;
    if (sp.IsByte(id)) return 6;
    return 1;
}

int32_t hsp_unk_id(const hsp_processor *processor) { return processor->processor.unk_id(); }
int32_t hsp_bos_id(const hsp_processor *processor) { return processor->processor.bos_id(); }
int32_t hsp_eos_id(const hsp_processor *processor) { return processor->processor.eos_id(); }
int32_t hsp_pad_id(const hsp_processor *processor) { return processor->processor.pad_id(); }

}  // extern "C"
