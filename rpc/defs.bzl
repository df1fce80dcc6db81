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
work.

.proto files you did not write import each other by fixed paths
("grpc/testing/empty.proto") that need not match where they sit in your
workspace. Say how, as for proto_library:

    cc_bevrpc_library(
        name = "interop",
        srcs = ["vendor/grpc/testing/test.proto", ...],
        strip_import_prefix = "vendor",  # imported as grpc/testing/test.proto
    )

and include the generated code by the import path:
`#include "grpc/testing/test.bevrpc.h"`. `import_prefix` prepends a path
instead (or as well). A .proto in another repository (e.g. a
new_local_repository over an installed package) is imported by its path in
that repository and needs neither. See docs/tutorial.md, "Using .proto files
you did not write".
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

def _find_output(outputs, generated):
    """The output File at `generated` (an import path) under the output
    directory: of those whose path ends with "/" + `generated`, the shortest
    ("x.bevrpc.h", not "sub/x.bevrpc.h"); None if there is none."""
    found = None
    for f in outputs:
        if f.path.endswith("/" + generated):
            if found == None or len(f.path) < len(found.path):
                found = f
    return found

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

    # The plugin writes NAME.bevrpc.{h,cc} under --bevrpc_out at the import
    # path of NAME.proto: find the directory that puts them where Bazel
    # expects them (the macro declared them at the import path, under a
    # directory of their own when the import path is not the workspace
    # path).
    out_dir = None
    direct = []
    for src in proto_info.direct_sources:
        import_path = _import_path(src, proto_roots)
        direct.append(import_path)
        generated = import_path[:-len(".proto")] + ".bevrpc.h"
        header = _find_output(ctx.outputs.hdrs, generated)
        if header == None:
            fail(("%s: %s is imported as %s, but no output was declared " +
                  "there; set strip_import_prefix/import_prefix on the " +
                  "cc_bevrpc_library, not on a proto_library it wraps") %
                 (ctx.label, src.short_path, import_path))
        src_dir = header.path[:-len("/" + generated)]
        if out_dir != None and src_dir != out_dir:
            fail("%s: generated files land in %s and %s" %
                 (ctx.label, out_dir, src_dir))
        out_dir = src_dir

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

def _join(*parts):
    return "/".join([p.strip("/") for p in parts if p.strip("/")])

def _import_paths(srcs, strip_import_prefix, import_prefix):
    """The paths `import` statements use for `srcs`, as proto_library sees
    them with these attributes (None: not set)."""
    package = native.package_name()
    if strip_import_prefix == None:
        strip = ""  # The repository root.
    elif strip_import_prefix.startswith("/"):
        strip = strip_import_prefix.strip("/")
    else:
        strip = _join(package, strip_import_prefix)
    paths = []
    for src in srcs:
        path = _join(package, src[1:] if src.startswith(":") else src)
        if strip:
            if not path.startswith(strip + "/"):
                fail("cc_bevrpc_library: %s is not under strip_import_prefix %s" %
                     (path, strip))
            path = path[len(strip) + 1:]
        paths.append(_join(import_prefix or "", path))
    return paths

def cc_bevrpc_library(
        name,
        srcs,
        deps = [],
        proto_deps = [],
        strip_import_prefix = None,
        import_prefix = None,
        visibility = None,
        **kwargs):
    """C++ messages, bevrpc server bases and client stubs for `srcs`.

    Args:
      name: the cc_library to depend on; also the prefix of the helpers.
      srcs: .proto files of this package.
      deps: cc_bevrpc_library targets whose .proto files `srcs` import.
      proto_deps: proto_library targets `srcs` import that are not part of a
        cc_bevrpc_library, e.g. "@com_google_protobuf//:empty_proto"; they
        may use strip_import_prefix/import_prefix themselves.
      strip_import_prefix: as proto_library's: the prefix cut from the paths
        of `srcs` to get the path they are imported (and included) by;
        package-relative, or repository-relative if it starts with "/".
        Default: none, `srcs` are imported by their workspace path.
      import_prefix: as proto_library's: a path put before that.
      visibility: of every target declared.
      **kwargs: common attributes (tags, testonly, ...) go to every target;
        the others (copts, defines, ...) to the cc_library.
    """
    common = {k: kwargs.pop(k) for k in _COMMON_ATTRS if k in kwargs}
    moved = {}
    if strip_import_prefix != None:
        moved["strip_import_prefix"] = strip_import_prefix
    if import_prefix != None:
        moved["import_prefix"] = import_prefix

    native.proto_library(
        name = name + "_proto",
        srcs = srcs,
        deps = [_proto_label(d) for d in deps] + proto_deps,
        visibility = visibility,
        **dict(common, **moved)
    )
    cc_proto_library(
        name = name + "_cc_proto",
        deps = [":" + name + "_proto"],
        visibility = visibility,
        **common
    )
    hdrs = _generated_files(srcs, ".bevrpc.h")
    gen_srcs = _generated_files(srcs, ".bevrpc.cc")
    include = {}
    if moved:
        # Generated at their import path under a directory of their own,
        # which the cc_library strips, so that they are included as
        # "IMPORT_PATH.bevrpc.h" (the way NAME.pb.h is).
        out = name + "_bevrpc_out"
        imports = ["/".join([out, p]) for p in
                   _import_paths(srcs, strip_import_prefix, import_prefix)]
        hdrs = _generated_files(imports, ".bevrpc.h")
        gen_srcs = _generated_files(imports, ".bevrpc.cc")
        include["strip_include_prefix"] = out
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
            # Labels, so that they name bevrpc's targets when the macro is
            # used from another repository.
            Label("//rpc"),
            Label("//third_party:absl"),
            "@com_google_protobuf//:protobuf",
        ] + deps,
        visibility = visibility,
        **dict(dict(common, **kwargs), **include)
    )
