#include "tools/protoc-gen-bevrpc/test_util.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/compiler/parser.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace bevrpc::protoc_gen {
namespace {

namespace pb = ::google::protobuf;

// Appends "line:column: message" lines to a string.
class StringErrorCollector : public pb::io::ErrorCollector,
                             public pb::DescriptorPool::ErrorCollector {
 public:
  explicit StringErrorCollector(std::string* out) : out_(out) {}

  void AddError(int line, pb::io::ColumnNumber column,
                const std::string& message) override {
    absl::StrAppend(out_, line + 1, ":", column + 1, ": ", message, "\n");
  }

  void AddError(const std::string& filename, const std::string& element_name,
                const pb::Message* descriptor, ErrorLocation location,
                const std::string& message) override {
    absl::StrAppend(out_, filename, ": ", element_name, ": ", message, "\n");
  }

 private:
  std::string* out_;
};

}  // namespace

const pb::FileDescriptor* ProtoFiles::Add(absl::string_view name,
                                          absl::string_view text) {
  errors_.clear();
  StringErrorCollector errors(&errors_);
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  pb::io::Tokenizer tokenizer(&input, &errors);
  pb::compiler::Parser parser;
  parser.RecordErrorsTo(&errors);
  pb::FileDescriptorProto proto;
  if (!parser.Parse(&tokenizer, &proto)) return nullptr;
  proto.set_name(std::string(name));
  return pool_.BuildFileCollectingErrors(proto, &errors);
}

pb::io::ZeroCopyOutputStream* InMemoryContext::Open(
    const std::string& filename) {
  std::string* file = &files_[filename];
  file->clear();
  return new pb::io::StringOutputStream(file);
}

}  // namespace bevrpc::protoc_gen
