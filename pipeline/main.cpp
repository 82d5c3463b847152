// rapidnii command line.
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <tuple>

#include "io/gzip.h"
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
  conv->add_option("--memory-limit", opt.memory_limit_mb,
                   "MiB of series data in flight (default: half of the physical memory)")
      ->check(CLI::NonNegativeNumber);
  conv->add_option("--device", device, "Kernel executor: auto, cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  conv->add_option("--compression", opt.compression,
                   "fast (up to 1.15x gzip -6 size), default (at most 1.02x gzip -6, fastest that fits, chosen per "
                   "volume), small, or a level 0-12 / libdeflate-N / isal-N");
  conv->add_option("--level", opt.compression, "Same as --compression with a number (kept for scripts)");
  std::string profile = "research";
  conv->add_option("--profile", profile,
                   "De-identification profile: research (default), strict, or limited (keeps identity; "
                   "needs --allow-phi)")
      ->check(CLI::IsMember({"research", "strict", "limited"}));
  conv->add_flag("--allow-phi", opt.allow_phi, "Required with --profile limited: outputs then contain PHI");
  conv->add_option("--key-file", opt.key_file,
                   "Secret key for pseudonyms and date shifts (default: a key kept in the state folder)")
      ->check(CLI::ExistingFile);
  conv->add_option("--state", opt.state_dir,
                   "Private state folder, outside OUT_DIR (default: OUT_DIR.rapidnii-state beside OUT_DIR)");
  conv->add_flag("--convert-burned-in-risk", opt.convert_burned_in_risk,
                 "Also convert series that may carry burned-in identifying text (marked in their sidecars)");
  conv->add_flag("--neutral-origin", opt.neutral_origin, "Move the affine origin to the centre of each volume");
  conv->add_option("--orient", opt.orient,
                   "Stored voxel order: native (as dcm2niix: rows flipped, a 3D MR acquisition in the nearest "
                   "orthogonal orientation), acquired (rows flipped, never rotated: dcm2niix -x i), RAS, LAS or "
                   "LPS; the world grid is unchanged")
      ->check(CLI::IsMember({"native", "acquired", "RAS", "LAS", "LPS", "ras", "las", "lps"}));
  conv->add_option("--deface", opt.deface,
                   "Face of head scans: blur, remove or off (default off; remove in the strict profile)")
      ->check(CLI::IsMember({"blur", "remove", "off"}));
  std::string shard;
  conv->add_option("--shard", shard,
                   "K/N: convert only the subjects of shard K of N (a keyed partition; N processes together "
                   "convert everything, e.g. a Slurm job array)");

  std::string merge_dir;
  auto* merge = app.add_subcommand("merge-manifests", "Join the per-shard manifests of OUT_DIR into manifest.csv");
  merge->add_option("OUT_DIR", merge_dir, "Output folder written by the shards")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    if (merge->parsed()) {
      const size_t rows = rapidnii::pipeline::merge_manifests(merge_dir);
      std::cout << "rapidnii: manifest.csv written with " << rows << " rows\n";
      return 0;
    }
    if (!shard.empty()) std::tie(opt.shard_index, opt.shard_count) = rapidnii::pipeline::parse_shard(shard);
    (void)rapidnii::io::parse_compression(opt.compression);  // reject a bad value before any work
    opt.device = rapidnii::kernels::parse_device(device);
    opt.profile = rapidnii::pipeline::deid::parse_profile(profile);
    auto sum = rapidnii::pipeline::convert(opt);
    rapidnii::pipeline::print_summary(sum, std::cout);
    return sum.exit_code();
  } catch (const std::filesystem::filesystem_error& e) {
    // never print the paths a filesystem error carries: they may name a patient
    std::cerr << "rapidnii: error: file system: " << e.code().message() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "rapidnii: error: " << e.what() << "\n";
    return 2;
  }
}
