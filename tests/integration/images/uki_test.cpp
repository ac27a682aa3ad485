#include <catch2/catch.hpp>
#include <regex>

#include "common/file.hpp"
#include "common/pe_file.hpp"
#include "common/process.hpp"
#include "images/builder.hpp"
#include "tests/integration/support/loop_btrfs.hpp"
#include "tests/version_literal.hpp"

using namespace ballast;
using namespace ballast::version_literals;
using ballast::testing::LoopBtrfs;

namespace {

// A throwaway self-signed Secure Boot key pair in `dir`.
images::SigningKey make_key(const std::string& dir, const std::string& name) {
  images::SigningKey k{path_join(dir, name + ".key"), path_join(dir, name + ".crt")};
  REQUIRE(run_checked({"openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                       "/CN=ballast test " + name, "-keyout", k.key, "-out", k.cert}));
  return k;
}

Result<images::BuiltImage> build_uki(const std::string& output, std::optional<images::SigningKey> key = {}) {
  auto def = images::load_definition(std::string(BALLAST_SOURCE_ROOT) + "/images/minimal.toml");
  REQUIRE(def);
  def->kernel.uki = true;
  images::BuildOptions opts;
  opts.version = "2.0"_v;
  opts.output = output;
  opts.source_date_epoch = 1700000000;
  opts.secure_boot = std::move(key);
  return images::build_image(*def, opts);
}

// Section names in the order objdump lists them.
std::vector<std::string> objdump_sections(const std::string& path) {
  auto r = run_checked({"objdump", "-h", path});
  REQUIRE(r);
  std::vector<std::string> names;
  static const std::regex line(R"(^\s*\d+\s+(\.\S+)\s)");
  std::istringstream in(r->out);
  std::string l;
  std::smatch m;
  while (std::getline(in, l))
    if (std::regex_search(l, m, line)) names.push_back(m[1]);
  return names;
}

}  // namespace

TEST_CASE("an image with a UKI carries the stub's sections followed by .osrel .cmdline .linux .initrd") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  const std::string out = (*fs)->mount_point() + "/img";
  auto built = build_uki(out);
  REQUIRE(built);
  CHECK(built->uki);
  CHECK_FALSE(built->signed_);
  const std::string uki = out + images::kUkiPath;
  auto names = objdump_sections(uki);
  REQUIRE(names.size() > 4);
  CHECK(names.front() == ".text");
  CHECK(std::vector<std::string>(names.end() - 4, names.end()) ==
        std::vector<std::string>{".osrel", ".cmdline", ".linux", ".initrd"});

  auto bytes = read_file(uki);
  REQUIRE(bytes);
  const std::string modules = out + "/usr/lib/modules/" + built->kernel_version;
  CHECK(*pe::section_contents(*bytes, ".linux") == read_file(modules + "/vmlinuz").value());
  CHECK(*pe::section_contents(*bytes, ".initrd") == read_file(modules + "/initrd.img").value());
  // The image's os-release without IMAGE_ID, so that systemd-boot's sort key is ID=ballast.
  auto osrel = pe::section_contents(*bytes, ".osrel");
  REQUIRE(osrel);
  REQUIRE(osrel->has_value());
  CHECK_THAT(**osrel, Catch::Contains("IMAGE_VERSION=\"2.0\"\n") && Catch::Contains("ID=\"ballast\"\n"));
  CHECK_THAT(**osrel, !Catch::Contains("IMAGE_ID"));
  CHECK_THAT(*read_file(out + "/usr/lib/os-release"), Catch::Contains("IMAGE_ID=\"minimal\""));
  CHECK(*pe::section_contents(*bytes, ".cmdline") ==
        std::optional<std::string>("root=/dev/gpt-auto-root rootflags=subvol=@ballast/deploy/2.0 ro ballast.version=2.0 console=ttyS0 quiet"));

  // Page-aligned, after the stub's sections, not overlapping one another.
  auto img = pe::read_image(*bytes);
  REQUIRE(img);
  uint64_t previous_end = 0;
  for (const auto& s : img->sections) {
    CHECK(s.virtual_address >= previous_end);
    previous_end = uint64_t{s.virtual_address} + s.virtual_size;
  }
  CHECK(img->find(".osrel")->virtual_address % 4096 == 0);
  CHECK(img->find(".linux")->virtual_address % 4096 == 0);
  CHECK_FALSE(path_exists(out + images::kSignedLoaderPath));
  CHECK(images::verify_signature("/usr/share/ovmf/PkKek-1-snakeoil.pem", uki).error().code == "image.unsigned");
}

TEST_CASE("the UKI's command line names no host: two builds of a release carry the same UKI bytes") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  auto a = build_uki((*fs)->mount_point() + "/a");
  auto b = build_uki((*fs)->mount_point() + "/b");
  REQUIRE(a);
  REQUIRE(b);
  auto uki_a = read_file(a->path + images::kUkiPath), uki_b = read_file(b->path + images::kUkiPath);
  REQUIRE(uki_a);
  CHECK(*uki_a == *uki_b);
  auto cmdline = pe::section_contents(*uki_a, ".cmdline");
  REQUIRE(cmdline);
  CHECK(cmdline->value().find("UUID=") == std::string::npos);
}

TEST_CASE("with a Secure Boot key the UKI and systemd-boot are signed and verify against that certificate only") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  auto keys = make_temp_dir("ballast-uki-keys");
  REQUIRE(keys);
  // Debian's snakeoil key, as OVMF's Secure Boot variables enrol it; sbsign needs it decrypted.
  images::SigningKey snakeoil{path_join(*keys, "snakeoil.key"), "/usr/share/ovmf/PkKek-1-snakeoil.pem"};
  REQUIRE(run_checked({"openssl", "rsa", "-passin", "pass:snakeoil", "-in", "/usr/share/ovmf/PkKek-1-snakeoil.key",
                       "-out", snakeoil.key}));
  const auto other = make_key(*keys, "other");

  const std::string out = (*fs)->mount_point() + "/signed";
  auto built = build_uki(out, snakeoil);
  REQUIRE(built);
  CHECK(built->signed_);
  for (const char* rel : {images::kUkiPath, images::kSignedLoaderPath}) {
    INFO(rel);
    const std::string path = out + rel;
    CHECK(run_process({"sbverify", "--cert", snakeoil.cert, path})->success());
    CHECK(images::verify_signature(snakeoil.cert, path));
    CHECK_FALSE(run_process({"sbverify", "--cert", other.cert, path})->success());
    CHECK(images::verify_signature(other.cert, path).error().code == "image.unsigned");
  }
  // The signed loader is systemd-boot's own code: the unsigned original's sections, plus a signature.
  auto loader = read_file(out + images::kSignedLoaderPath);
  auto original = read_file(images::kDefaultSystemdBoot);
  REQUIRE(loader);
  REQUIRE(original);
  CHECK(*pe::section_contents(*loader, ".text") == *pe::section_contents(*original, ".text"));
  (void)remove_tree(*keys);
}

TEST_CASE("a Secure Boot key that is missing or unusable fails the build and leaves nothing") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  auto keys = make_temp_dir("ballast-uki-keys");
  REQUIRE(keys);
  const std::string out = (*fs)->mount_point() + "/img";
  auto missing = build_uki(out, images::SigningKey{*keys + "/absent.key", "/usr/share/ovmf/PkKek-1-snakeoil.pem"});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == "image.secure-boot-key");
  REQUIRE(write_file_atomic(*keys + "/garbage.key", "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"));
  auto garbage = build_uki(out, images::SigningKey{*keys + "/garbage.key", "/usr/share/ovmf/PkKek-1-snakeoil.pem"});
  REQUIRE_FALSE(garbage);
  CHECK_FALSE(path_exists(out));
  CHECK(list_dir((*fs)->mount_point()).value().empty());
  (void)remove_tree(*keys);
}

TEST_CASE("the PCR 11 prediction of a built UKI equals systemd-measure's on the parts it was built from, signed or not") {
  auto fs = LoopBtrfs::create();
  REQUIRE(fs);
  auto keys = make_temp_dir("ballast-uki-keys");
  REQUIRE(keys);
  const std::string out = (*fs)->mount_point() + "/img", signed_out = (*fs)->mount_point() + "/signed";
  auto built = build_uki(out);
  REQUIRE(built);
  auto signed_built = build_uki(signed_out, make_key(*keys, "release"));
  REQUIRE(signed_built);
  const std::string uki = out + images::kUkiPath;
  auto predicted = images::predict_pcr11(uki);
  REQUIRE(predicted);

  // The reference: systemd-measure on the kernel and initrd files themselves and the text of the
  // sections, not on anything read back from the UKI.
  auto bytes = read_file(uki);
  REQUIRE(bytes);
  const std::string modules = out + "/usr/lib/modules/" + built->kernel_version;
  REQUIRE(write_file_atomic(*keys + "/osrel", pe::section_contents(*bytes, ".osrel")->value()));
  REQUIRE(write_file_atomic(*keys + "/cmdline", pe::section_contents(*bytes, ".cmdline")->value()));
  for (const char* phase : images::kPcr11Phases) {
    INFO(phase);
    auto ref = run_checked({images::kSystemdMeasure, "calculate", "--bank=sha256", "--linux=" + modules + "/vmlinuz",
                            "--initrd=" + modules + "/initrd.img", "--osrel=" + *keys + "/osrel",
                            "--cmdline=" + *keys + "/cmdline", std::string("--phase=") + phase});
    REQUIRE(ref);
    CHECK_THAT(ref->out, Catch::Contains("11:sha256=" + predicted->at(phase)));
  }
  // The phases give distinct values, and a signature is not measured: the signed UKI predicts the same.
  CHECK(predicted->at("") != predicted->at("enter-initrd:leave-initrd:sysinit:ready"));
  CHECK(images::predict_pcr11(signed_out + images::kUkiPath).value() == *predicted);
  // pe_file tells a signed UKI from an unsigned one by its certificate table.
  CHECK_FALSE(*pe::has_authenticode_signature_of_file(uki));
  CHECK(*pe::has_authenticode_signature_of_file(signed_out + images::kUkiPath));
  (void)remove_tree(*keys);
}
