// Layout helpers for the code protoc-gen-bevrpc prints: comments carried over
// from the .proto, and declarations and calls wrapped at 80 columns the way
// Google style lays them out by hand.
//
//   WrapCall(2, "virtual ::absl::Status SayHello(",
//            {"::bevrpc::ServerContext& ctx", "const HelloRequest& request",
//             "HelloReply* response"},
//            ");")
//   ->
//     virtual ::absl::Status SayHello(::bevrpc::ServerContext& ctx,
//                                     const HelloRequest& request,
//                                     HelloReply* response);
//
// For use by the plugin only. Pure functions; thread-safe.
#ifndef BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_CODE_FORMAT_H_
#define BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_CODE_FORMAT_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace bevrpc::protoc_gen {

// The column limit of generated code.
inline constexpr int kMaxColumns = 80;

// How WrapCall() lays out arguments that do not fit on one line.
enum class Packing {
  kOnePerLine,  // For declarations: each parameter on its own line.
  kBinPack,     // For calls: as many arguments on each line as fit.
};

// Lays out `head` + `args` joined by ", " + `tail`, starting at column
// `indent`, and returns the lines, each ending in '\n'. In order of
// preference: all on one line; the arguments aligned after the opening
// parenthesis (the end of `head`); or the arguments on the next lines,
// indented 4 more than `indent`. An argument never is split, so a very long
// one may overflow.
std::string WrapCall(int indent, absl::string_view head,
                     const std::vector<std::string>& args,
                     absl::string_view tail,
                     Packing packing = Packing::kOnePerLine);

// A function declaration or definition head: WrapCall() of
// "`return_type` `name`(" `params` `tail`, or, if that still overflows, the
// return type alone on the first line (Google style allows both).
std::string WrapFunction(int indent, absl::string_view return_type,
                         absl::string_view name,
                         const std::vector<std::string>& params,
                         absl::string_view tail);

// `lhs = rhs;` at column `indent`: on one line if it fits, else broken after
// the '=' with `rhs` indented 4 more.
std::string WrapAssignment(int indent, absl::string_view lhs,
                           absl::string_view rhs);

// `text` as "//" comment lines at column `indent`, each ending in '\n'. For
// comments from a .proto: each line keeps its own leading space (protoc keeps
// the one after "//"); trailing blank lines go; and a trailing backslash,
// which would splice the next line of code into the comment, is dropped.
// Empty `text` gives "".
std::string CommentBlock(int indent, absl::string_view text);

}  // namespace bevrpc::protoc_gen

#endif  // BEVRPC_TOOLS_PROTOC_GEN_BEVRPC_CODE_FORMAT_H_
