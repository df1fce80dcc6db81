// bevrpc: the command-line client. See tools/cli/cli.h and docs/cli.md.
#include <iostream>
#include <string>
#include <vector>

#include "tools/cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return bevrpc::cli::RunCli(args, std::cin, std::cout, std::cerr);
}
