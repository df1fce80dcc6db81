#include "tools/cli/json_codec.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/text_format.h"
#include "google/protobuf/util/json_util.h"

namespace bevrpc::cli {
namespace {

// Protobuf's JSON errors may span lines (the input and a caret): keep the
// first, for a one-line message.
std::string FirstLine(absl::string_view text) {
  text = text.substr(0, text.find('\n'));
  while (!text.empty() && (text.back() == ' ' || text.back() == '.')) {
    text.remove_suffix(1);
  }
  return std::string(text);
}

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1,
                         diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

const FieldDescriptor* FindJsonField(const Descriptor* d, const std::string& key) {
  const FieldDescriptor* f = d->FindFieldByName(key);
  for (int i = 0; f == nullptr && i < d->field_count(); ++i) {
    if (d->field(i)->json_name() == key) f = d->field(i);
  }
  return f;
}

absl::Status CheckValue(const google::protobuf::Value& v,
                        const FieldDescriptor* field, const std::string& path);

// Walks generic JSON against the message type, so that an unknown key is
// reported with its path and a suggestion.
absl::Status CheckObject(const google::protobuf::Struct& object,
                         const Descriptor* d, const std::string& path) {
  if (d->well_known_type() != Descriptor::WELLKNOWNTYPE_UNSPECIFIED) {
    return absl::OkStatus();  // Any, Struct, Timestamp...: protobuf checks.
  }
  for (const auto& [key, value] : object.fields()) {
    const FieldDescriptor* f = FindJsonField(d, key);
    if (f == nullptr) {
      std::vector<std::string> names;
      for (int i = 0; i < d->field_count(); ++i) {
        names.push_back(d->field(i)->json_name());
        if (d->field(i)->name() != d->field(i)->json_name()) {
          names.push_back(d->field(i)->name());
        }
      }
      std::string hint = ClosestName(key, names);
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown field \"", key, "\" in ", d->full_name(),
          path.empty() ? "" : absl::StrCat(" (at ", path, ")"),
          hint.empty() ? "" : absl::StrCat(", did you mean \"", hint, "\"?")));
    }
    absl::Status s =
        CheckValue(value, f, path.empty() ? key : absl::StrCat(path, ".", key));
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status CheckValue(const google::protobuf::Value& v,
                        const FieldDescriptor* field, const std::string& path) {
  if (field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE || field->is_map()) {
    return absl::OkStatus();
  }
  if (v.has_struct_value()) {
    return CheckObject(v.struct_value(), field->message_type(), path);
  }
  if (v.has_list_value()) {
    for (int i = 0; i < v.list_value().values_size(); ++i) {
      const auto& item = v.list_value().values(i);
      if (item.has_struct_value()) {
        absl::Status s = CheckObject(item.struct_value(), field->message_type(),
                                     absl::StrCat(path, "[", i, "]"));
        if (!s.ok()) return s;
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string ClosestName(absl::string_view name,
                        const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, name.size() / 3) + 1;
  for (const std::string& c : candidates) {
    size_t d = EditDistance(name, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

absl::StatusOr<OutputFormat> ParseOutputFormat(absl::string_view text) {
  if (text == "json") return OutputFormat::kJson;
  if (text == "text") return OutputFormat::kText;
  if (text == "binary") return OutputFormat::kBinary;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown --format \"", text, "\" (json, text or binary)"));
}

absl::Status ParseJsonRequest(absl::string_view json,
                              google::protobuf::Message* message) {
  google::protobuf::Struct generic;
  auto parsed = google::protobuf::util::JsonStringToMessage(
      std::string(json), &generic);
  if (!parsed.ok()) {
    // Not a JSON object at all: say so in JSON terms.
    return absl::InvalidArgumentError(absl::StrCat(
        "request is not a JSON object: ", FirstLine(parsed.message().as_string())));
  }
  absl::Status s = CheckObject(generic, message->GetDescriptor(), "");
  if (!s.ok()) return s;
  parsed = google::protobuf::util::JsonStringToMessage(std::string(json),
                                                     message);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("request does not match ",
                     message->GetDescriptor()->full_name(), ": ",
                     FirstLine(parsed.message().as_string())));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> FormatMessage(const google::protobuf::Message& m,
                                          OutputFormat format,
                                          bool emit_defaults) {
  std::string out;
  switch (format) {
    case OutputFormat::kJson: {
      google::protobuf::util::JsonPrintOptions options;
      options.preserve_proto_field_names = true;
      options.always_print_primitive_fields = emit_defaults;
      auto s = google::protobuf::util::MessageToJsonString(m, &out, options);
      if (!s.ok()) {
        return absl::InternalError(
            absl::StrCat("cannot print response as JSON: ",
                         s.message().as_string()));
      }
      return out;
    }
    case OutputFormat::kText:
      google::protobuf::TextFormat::PrintToString(m, &out);
      return out;
    case OutputFormat::kBinary:
      m.SerializeToString(&out);
      return out;
  }
  return out;
}

}  // namespace bevrpc::cli
