// vit/convert_names.h: (internal to vit/convert*.cpp) how each source names a ViT's tensors, and the pass
// that renames a source state dict to the canonical (timm) names.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "vit/convert.h"

namespace sanf::vit::convert_detail {

// One canonical tensor and the source tensor(s) it is made of. Inside a block both are suffixes after the
// block prefix. Three sources are stacked along dim 0 in the order given (Hugging Face's query, key, value
// into qkv, whose rows timm splits as q, k, v).
struct Rule {
  std::string canonical;
  std::vector<std::string> from;
};

struct Naming {
  std::string source;              // "timm", "hf", "torchvision"
  std::vector<std::string> strip;  // wrapper prefixes removed from every name first ("module.", "vit.")
  std::vector<std::string> drop;   // prefixes of tensors that are not the backbone (classifier heads)
  std::string block;               // the prefix before a block's index ("blocks.", "encoder.layer.", ...)
  std::vector<Rule> global, per_block;
};

const Naming& naming(const std::string& source);  // throws for an unknown source, listing the known ones

// Canonical tensors (f32) and, for messages, the source name(s) each was made from.
struct Renamed {
  StateDict tensors;
  std::map<std::string, std::string> origin;
};

// Every input tensor renamed (and q/k/v stacked) or dropped; anything unrecognised, repeated, incomplete or
// of a dtype other than F32/F16/BF16 is an error naming `path` and the tensor.
Renamed rename_to_canonical(const StateDict& in, const Naming& n, const std::string& path);

// The source name(s) a canonical tensor is made of, for messages about a missing tensor:
// "blocks.3.norm1.weight" under hf -> "encoder.layer.3.layernorm_before.weight".
std::vector<std::string> source_names(const Naming& n, const std::string& canonical);
std::string source_name(const Naming& n, const std::string& canonical);  // quoted and comma-joined

// "blocks.12.attn.qkv.weight" -> 12 and "attn.qkv.weight"; false for anything else (no sign, no leading zero).
bool parse_block_name(const std::string& name, const std::string& prefix, int64_t& index, std::string& suffix);

}  // namespace sanf::vit::convert_detail
