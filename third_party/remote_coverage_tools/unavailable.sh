#!/bin/sh
echo "coverage is not available in bevrpc's offline Bazel setup" >&2
exit 1
