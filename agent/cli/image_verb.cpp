// `ballast image build|prepare|convert`: the build side's image builder, and raw disk images to fixed VHDs.
#include <filesystem>
#include <iostream>

#include "agent/cli/verb.hpp"
#include "images/builder.hpp"
#include "images/vhd.hpp"

namespace ballast::cli {
namespace {

struct ImageBuildArgs {
  std::string definition;
  images::BuildOptions opts;
  std::string version;
  int64_t epoch = -1;
  std::vector<std::string> overlays;
  std::string secure_boot_key, secure_boot_cert;
};

int build(const GlobalOptions& g, ImageBuildArgs& a) {
  auto def = images::load_definition(a.definition);
  if (!def) return report_error(def.error());
  auto version = Version::parse(a.version);
  if (!version) return report_error(version.error());
  a.opts.version = *version;
  for (const auto& o : a.overlays) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(o, ec).lexically_normal().string();
    if (ec || !std::filesystem::is_directory(abs, ec))
      return report_error(Error{"image.bad-overlay", "--overlay " + o + " is not a directory", 0, {}});
    def->overlays.push_back(abs);
  }
  if (a.epoch >= 0) a.opts.source_date_epoch = a.epoch;
  if (a.secure_boot_key.empty() != a.secure_boot_cert.empty())
    return report_error(Error{"image.secure-boot-key", "--secure-boot-key and --secure-boot-cert go together", 0, {}});
  if (!a.secure_boot_key.empty()) a.opts.secure_boot = images::SigningKey{a.secure_boot_key, a.secure_boot_cert};
  a.opts.ballast_binary = "/proc/self/exe";
  a.opts.units_dir = BALLAST_UNITS_DIR;
  auto built = images::build_image(*def, a.opts);
  if (!built) return report_error(built.error());
  if (g.json) {
    print_json({{"path", built->path}, {"name", built->name}, {"version", built->version.str()},
                {"kernel_version", built->kernel_version}, {"source_date_epoch", built->source_date_epoch},
                {"uki", built->uki ? nlohmann::json(images::kUkiPath) : nlohmann::json(nullptr)}, {"signed", built->signed_}});
  } else {
    std::cout << "built " << built->name << " " << built->version.str() << " (kernel " << built->kernel_version
              << ") into read-only subvolume " << built->path << "\n";
    if (built->uki)
      std::cout << "with a" << (built->signed_ ? " signed" : "n unsigned") << " UKI at " << images::kUkiPath
                << (built->signed_ ? std::string(" and a signed systemd-boot at ") + images::kSignedLoaderPath : "") << "\n";
  }
  return 0;
}

struct ImagePrepareArgs {
  std::string definition;
  std::string cache_dir = images::BuildOptions{}.cache_dir;
};

int prepare(const GlobalOptions& g, const ImagePrepareArgs& a) {
  auto def = images::load_definition(a.definition);
  if (!def) return report_error(def.error());
  auto cached = images::prepare_base(*def, a.cache_dir);
  if (!cached) return report_error(cached.error());
  if (g.json) {
    print_json({{"name", def->name}, {"cached", cached->empty() ? nlohmann::json(nullptr) : nlohmann::json(*cached)}});
  } else if (cached->empty()) {
    std::cout << def->name << ": its base needs no cache\n";
  } else {
    std::cout << def->name << ": base cached in " << *cached << "\n";
  }
  return 0;
}

struct ImageConvertArgs {
  std::string to, image, output;
};

// Raw to fixed VHD; OUTPUT defaults to IMAGE with its suffix replaced by .vhd.
int convert(const GlobalOptions& g, const ImageConvertArgs& a) {
  if (a.to != "vhd") return report_error(Error{"image.bad-format", "--to takes vhd, not \"" + a.to + "\"", 0, {}});
  auto vhd_size = images::read_fixed_vhd(a.image);
  if (!vhd_size) return report_error(vhd_size.error());
  std::string output = a.output;
  if (output.empty()) output = std::filesystem::path(a.image).replace_extension(".vhd").string();
  if (*vhd_size && output == a.image) {
    // Converting a VHD to itself is done already.
    if (g.json) print_json({{"output", output}, {"virtualSize", **vhd_size}, {"converted", false}});
    else std::cout << output << " is already a fixed VHD of " << **vhd_size << " bytes\n";
    return 0;
  }
  if (auto converted = images::convert_to_vhd(a.image, output); !converted) return report_error(converted.error());
  auto written = images::read_fixed_vhd(output);
  if (!written || !*written) return report_error(Error{"image.convert", output + " is not a fixed VHD after writing", 0, {}});
  if (g.json) print_json({{"output", output}, {"virtualSize", **written}, {"converted", true}});
  else std::cout << "wrote " << output << ": a fixed VHD of " << **written << " bytes\n";
  return 0;
}

void setup(VerbContext& ctx) {
  auto* image = ctx.app.add_subcommand("image", "Build OS images from definitions, convert disk images (build side)");
  image->require_subcommand(1);
  static ImageBuildArgs args;
  auto* b = image->add_subcommand("build", "Build a definition into a new read-only Btrfs subvolume");
  b->add_option("definition", args.definition, "Image definition (images/NAME.toml)")->required();
  b->add_option("--version", args.version, "IMAGE_VERSION of the build")->required();
  b->add_option("--output", args.opts.output, "Subvolume to create (on Btrfs; must not exist)")->required();
  b->add_option("--source-date-epoch", args.epoch,
                "Timestamp of every file (default: $SOURCE_DATE_EPOCH, else the definition's mtime)");
  b->add_option("--parent", args.opts.parent,
                "Previous release's image: build over a snapshot of it so send deltas carry only changes");
  b->add_option("--overlay", args.overlays,
                "A directory laid over the image after the definition's own overlays (repeatable): site or test additions");
  b->add_option("--cache-dir", args.opts.cache_dir, "Cache of debootstrap results (default /var/cache/ballast/images)");
  b->add_option("--secure-boot-key", args.secure_boot_key,
                "Secure Boot private key (unencrypted PEM): sign the UKI and ship a signed systemd-boot");
  b->add_option("--secure-boot-cert", args.secure_boot_cert, "Secure Boot certificate (PEM) of --secure-boot-key");
  b->callback([&ctx] { ctx.action = [&g = ctx.global] { return build(g, args); }; });

  static ImagePrepareArgs prepare_args;
  auto* p = image->add_subcommand(
      "prepare", "Fetch and cache a definition's base (debootstrap) without building, so later builds start at once");
  p->add_option("definition", prepare_args.definition, "Image definition (images/NAME.toml)")->required();
  p->add_option("--cache-dir", prepare_args.cache_dir, "Cache of debootstrap results (default /var/cache/ballast/images)");
  p->callback([&ctx] { ctx.action = [&g = ctx.global] { return prepare(g, prepare_args); }; });

  static ImageConvertArgs convert_args;
  auto* c = image->add_subcommand(
      "convert", "Convert a raw disk image made elsewhere into a fixed VHD for Azure (a whole MiB, then the VHD footer)");
  c->add_option("image", convert_args.image, "Raw disk image file")->required();
  c->add_option("--to", convert_args.to, "Target format: vhd")->required();
  c->add_option("--output", convert_args.output, "Where to write (must not exist; default: IMAGE with the suffix .vhd)");
  c->callback([&ctx] { ctx.action = [&g = ctx.global] { return convert(g, convert_args); }; });
}

BALLAST_REGISTER_VERB(500, setup);

}  // namespace
}  // namespace ballast::cli
