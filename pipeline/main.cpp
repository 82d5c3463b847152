// rapidnii command line.
#include <CLI/CLI.hpp>

#include <iostream>

#include "pipeline/convert.h"

int main(int argc, char** argv) {
  CLI::App app{"rapidnii: DICOM archives to de-identified NIfTI"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("rapidnii ") + RAPIDNII_VERSION);

  rapidnii::pipeline::ConvertOptions opt;
  std::string device = "auto";
  auto* conv = app.add_subcommand("convert", "Convert every DICOM series under IN_DIR into OUT_DIR");
  conv->add_option("IN_DIR", opt.input, "Input folder (searched recursively; any file name)")->required();
  conv->add_option("OUT_DIR", opt.output, "Output folder (must not be inside IN_DIR)")->required();
  conv->add_option("--threads", opt.threads, "Worker threads (0: all cores)")->check(CLI::NonNegativeNumber);
  conv->add_option("--device", device, "Kernel executor: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  conv->add_option("--level", opt.compression_level, "Deflate level 1-12 (libdeflate)")->check(CLI::Range(1, 12));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    opt.device = rapidnii::kernels::parse_device(device);
    auto sum = rapidnii::pipeline::convert(opt);
    rapidnii::pipeline::print_summary(sum, std::cout);
    return sum.exit_code();
  } catch (const std::exception& e) {
    std::cerr << "rapidnii: error: " << e.what() << "\n";
    return 2;
  }
}
