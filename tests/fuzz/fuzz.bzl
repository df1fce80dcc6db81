"""cc_fuzz_test: a libFuzzer target that is also a regression test.

    load("//tests/fuzz:fuzz.bzl", "cc_fuzz_test")

    cc_fuzz_test(
        name = "frame_decoder_fuzzer",
        srcs = ["frame_decoder_fuzzer.cc"],  # defines LLVMFuzzerTestOneInput
        deps = ["//rpc"],
    )

The seed corpus is every file under corpus/NAME/ (committed; see
docs/fuzzing.md).

In the default build (gcc, and --config=asan) the target is a cc_test
linked with :replay_main, which runs every corpus file through
LLVMFuzzerTestOneInput once: `bazel test //tests/fuzz/...` replays the
corpora as regression tests.

Under --config=fuzz (clang, .bazelrc) the same target links libFuzzer's
main instead (-fsanitize=fuzzer). tools/fuzz.sh builds it and runs the
binary itself; `bazel test --config=fuzz` still only replays the corpus,
because the test's arguments start with -runs=0.
"""

load("@rules_cc//cc:defs.bzl", "cc_test")

def cc_fuzz_test(name, srcs, deps = [], size = "small", **kwargs):
    corpus = "corpus/" + name
    cc_test(
        name = name,
        size = size,
        srcs = srcs,
        deps = deps + select({
            "//tests/fuzz:libfuzzer": [],
            "//conditions:default": ["//tests/fuzz:replay_main"],
        }),
        linkopts = select({
            "//tests/fuzz:libfuzzer": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = native.glob([corpus + "/**"]),
        # The replay main and libFuzzer both take this: run each file once.
        args = ["-runs=0", "tests/fuzz/" + corpus],
        **kwargs
    )
