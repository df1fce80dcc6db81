"""cc_bevrpc_library: C++ messages, server bases and client stubs from .proto.

    load("//rpc:defs.bzl", "cc_bevrpc_library")

    cc_bevrpc_library(
        name = "inventory",
        srcs = ["inventory.proto"],
        deps = ["//shop/common:money"],  # cc_bevrpc_library targets imported
        proto_deps = ["@com_google_protobuf//:empty_proto"],  # other protos
    )

    cc_binary(name = "server", srcs = ["server.cc"], deps = [":inventory"])

and in C++, for shop/inventory/inventory.proto:

    #include "shop/inventory/inventory.bevrpc.h"  // services (and messages)
    #include "shop/inventory/inventory.pb.h"      // messages only

For `name`, the macro declares:

    name + "_proto"     proto_library over `srcs`
    name + "_cc_proto"  cc_proto_library: NAME.pb.h, NAME.pb.cc
    name + "_bevrpc"    protoc with //tools/protoc-gen-bevrpc: NAME.bevrpc.h,
                        NAME.bevrpc.cc (also addressable as ":NAME.bevrpc.h")
    name                cc_library over all of them; depend on this one.

Works offline with Bazel 4.2.3's native proto rules. protoc sees every
transitive .proto under its import path (with its comments, which the
generated header carries over), so imports across packages and repositories
work. `srcs` must be imported by their workspace path: no
strip_import_prefix or import_prefix.
"""

load("@rules_cc//cc:defs.bzl", "cc_library", "cc_proto_library")

# Attributes every rule takes; passed to each target the macro declares.
# (`deprecation` goes to the cc_library only: the others depend on each other.)
_COMMON_ATTRS = [
    "compatible_with",
    "restricted_to",
    "tags",
    "target_compatible_with",
    "testonly",
]

def _strip_dir(path, directory):
    """`path` relative to `directory`, or None if it is not under it."""
    if directory in ("", "."):
        return path
    if path.startswith(directory + "/"):
        return path[len(directory) + 1:]
    return None

def _import_path(src, proto_roots):
    """The path under which protoc and `import` statements know `src`.

    Args:
      src: a .proto File.
      proto_roots: the ProtoInfo's source roots other than the workspace
        root, longest first.
    """

    # Files moved by strip_import_prefix/import_prefix, or from another
    # repository, sit under a root of their own, e.g. external/x or
    # bazel-out/k8-opt/bin/external/x/_virtual_imports/y.
    for root in proto_roots:
        path = _strip_dir(src.path, root)
        if path != None:
            return path

    # A file of the main repository, checked in or generated into bazel-out.
    return _strip_dir(src.path, src.root.path)

def _bevrpc_generate_impl(ctx):
    proto_info = ctx.attr.proto[ProtoInfo]
    proto_roots = sorted(
        [
            r
            for r in proto_info.transitive_proto_path.to_list()
            if r not in ("", ".")
        ],
        key = len,
        reverse = True,
    )
    outs = ctx.outputs.hdrs + ctx.outputs.srcs
    if not proto_info.direct_sources:
        return [DefaultInfo(files = depset(outs))]
    outputs = {f.short_path: f for f in outs}

    # The plugin writes NAME.bevrpc.{h,cc} under --bevrpc_out at the import
    # path of NAME.proto: find the directory that puts them where Bazel
    # expects them.
    out_dir = None
    direct = []
    for src in proto_info.direct_sources:
        import_path = _import_path(src, proto_roots)
        direct.append(import_path)
        generated = import_path[:-len(".proto")] + ".bevrpc.h"
        header = outputs.get(src.short_path[:-len(".proto")] + ".bevrpc.h")
        if header == None or not header.path.endswith("/" + generated):
            fail(("%s: %s is imported as %s; cc_bevrpc_library needs .proto " +
                  "files imported by their workspace path") %
                 (ctx.label, src.short_path, import_path))
        out_dir = header.path[:-len("/" + generated)]

    args = ctx.actions.args()
    args.add("--plugin=protoc-gen-bevrpc=" + ctx.executable._plugin.path)
    args.add("--bevrpc_out=" + out_dir)
    for src in proto_info.transitive_sources.to_list():
        args.add("-I%s=%s" % (_import_path(src, proto_roots), src.path))
    args.add_all(direct)

    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = proto_info.transitive_sources,
        tools = [ctx.executable._plugin],
        outputs = outs,
        mnemonic = "BevrpcGenerate",
        progress_message = "Generating bevrpc code for %s" % ctx.label,
    )
    return [DefaultInfo(files = depset(outs))]

_bevrpc_generate = rule(
    implementation = _bevrpc_generate_impl,
    doc = "Runs protoc-gen-bevrpc over the sources of a proto_library.",
    attrs = {
        "proto": attr.label(mandatory = True, providers = [ProtoInfo]),
        # NAME.bevrpc.h and NAME.bevrpc.cc for every NAME.proto of `proto`.
        "hdrs": attr.output_list(mandatory = True),
        "srcs": attr.output_list(mandatory = True),
        "_protoc": attr.label(
            default = Label("@com_google_protobuf//:protoc"),
            executable = True,
            cfg = "exec",
        ),
        "_plugin": attr.label(
            default = Label("//tools/protoc-gen-bevrpc"),
            executable = True,
            cfg = "exec",
        ),
    },
)

def _proto_label(dep):
    """The proto_library of a cc_bevrpc_library: "//a/b" -> "//a/b:b_proto"."""
    if ":" in dep:
        return dep + "_proto"
    return "%s:%s_proto" % (dep, dep.split("/")[-1])

def _generated_files(srcs, suffix):
    """["x.proto", "sub/y.proto"] -> ["x" + suffix, "sub/y" + suffix]."""
    names = []
    for src in srcs:
        path = src[1:] if src.startswith(":") else src
        if not path.endswith(".proto") or "//" in path or ":" in path:
            fail("cc_bevrpc_library srcs must be .proto files of the same " +
                 "package, not " + src)
        names.append(path[:-len(".proto")] + suffix)
    return names

def cc_bevrpc_library(
        name,
        srcs,
        deps = [],
        proto_deps = [],
        visibility = None,
        **kwargs):
    """C++ messages, bevrpc server bases and client stubs for `srcs`.

    Args:
      name: the cc_library to depend on; also the prefix of the helpers.
      srcs: .proto files of this package.
      deps: cc_bevrpc_library targets whose .proto files `srcs` import.
      proto_deps: proto_library targets `srcs` import that are not part of a
        cc_bevrpc_library, e.g. "@com_google_protobuf//:empty_proto".
      visibility: of every target declared.
      **kwargs: common attributes (tags, testonly, ...) go to every target;
        the others (copts, defines, ...) to the cc_library.
    """
    common = {k: kwargs.pop(k) for k in _COMMON_ATTRS if k in kwargs}

    native.proto_library(
        name = name + "_proto",
        srcs = srcs,
        deps = [_proto_label(d) for d in deps] + proto_deps,
        visibility = visibility,
        **common
    )
    cc_proto_library(
        name = name + "_cc_proto",
        deps = [":" + name + "_proto"],
        visibility = visibility,
        **common
    )
    hdrs = _generated_files(srcs, ".bevrpc.h")
    gen_srcs = _generated_files(srcs, ".bevrpc.cc")
    _bevrpc_generate(
        name = name + "_bevrpc",
        proto = ":" + name + "_proto",
        hdrs = hdrs,
        srcs = gen_srcs,
        visibility = visibility,
        **common
    )
    cc_library(
        name = name,
        srcs = gen_srcs,
        hdrs = hdrs,
        deps = [
            ":" + name + "_cc_proto",
            "//rpc",
            "//third_party:absl",
            "@com_google_protobuf//:protobuf",
        ] + deps,
        visibility = visibility,
        **dict(common, **kwargs)
    )
