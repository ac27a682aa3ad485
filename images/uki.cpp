#include "images/uki.hpp"

#include <sys/stat.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/file.hpp"
#include "common/json_member.hpp"
#include "common/pe_file.hpp"
#include "common/process.hpp"
#include "snapshot/host_layout.hpp"

namespace ballast::images {

namespace {

constexpr uint64_t kPage = 4096;

// A scratch directory removed with everything in it when the scope ends.
struct RemovedAtExit {
  std::string dir;
  ~RemovedAtExit() { (void)remove_tree(dir); }
};

uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<uint64_t> file_size(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return fail_errno("image.uki", errno, "cannot read " + path);
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

std::string uki_cmdline(const Version& version, const std::string& extra) {
  std::string line = "root=/dev/gpt-auto-root rootflags=subvol=" + snapshot::HostLayout::deployment_subvol(version) +
                     " ro ballast.version=" + version.str();
  std::string e = extra;
  while (!e.empty() && (e.back() == '\n' || e.back() == ' ')) e.pop_back();
  if (!e.empty()) line += " " + e;
  return line;
}

Status assemble_uki(const std::string& stub, const UkiParts& parts, const std::string& output) {
  auto stub_bytes = BALLAST_TRY(with_context(read_file(stub, 16 << 20), "reading the EFI stub (apt-get install systemd-boot-efi)"));
  auto stub_image = BALLAST_TRY(with_context(pe::read_image(stub_bytes), stub));
  auto work = BALLAST_TRY(make_temp_dir("ballast-uki"));
  const RemovedAtExit cleanup{work};
  BALLAST_CHECK(write_file_atomic(path_join(work, "osrel"), parts.osrel));
  BALLAST_CHECK(write_file_atomic(path_join(work, "cmdline"), parts.cmdline));

  std::vector<std::pair<std::string, std::string>> sections = {
      {".osrel", path_join(work, "osrel")}, {".cmdline", path_join(work, "cmdline")}, {".linux", parts.linux_path}};
  if (!parts.initrd_path.empty()) sections.emplace_back(".initrd", parts.initrd_path);

  std::vector<std::string> argv = {"objcopy"};
  uint64_t vma = align_up(stub_image.end_of_sections(), kPage);
  for (const auto& [name, file] : sections) {
    const uint64_t size = BALLAST_TRY(file_size(file));
    argv.insert(argv.end(), {"--add-section", name + "=" + file, "--change-section-vma", name + "=" + hex(vma)});
    vma = align_up(vma + size, kPage);
  }
  const std::string partial = output + ".partial";
  argv.insert(argv.end(), {stub, partial});
  auto made = run_checked(argv, SpawnOptions{.timeout = std::chrono::minutes(5)});
  if (!made) {
    (void)remove_if_exists(partial);
    return with_context(Status(tl::unexpected(made.error())), "assembling the UKI with objcopy");
  }
  auto bytes = read_file(partial, 1ull << 30);
  (void)remove_if_exists(partial);
  if (!bytes) return with_context(Status(tl::unexpected(bytes.error())), "reading the assembled UKI");
  BALLAST_CHECK(pe::set_timestamp(*bytes, static_cast<uint32_t>(parts.timestamp)));
  return write_file_atomic(output, *bytes);
}

Result<std::map<std::string, std::string>> predict_pcr11(const std::string& uki, const std::string& measure_tool) {
  auto bytes = BALLAST_TRY(with_context(read_file(uki, 1ull << 30), "reading the UKI"));
  auto image = BALLAST_TRY(with_context(pe::read_image(bytes), uki));
  auto work = BALLAST_TRY(make_temp_dir("ballast-measure"));
  const RemovedAtExit cleanup{work};
  std::vector<std::string> argv = {measure_tool, "calculate", "--bank=sha256", "--json=short"};
  // The sections systemd-stub 252 measures, by systemd-measure's option for each.
  for (const char* name : {"linux", "osrel", "cmdline", "initrd", "splash", "dtb", "pcrpkey"}) {
    const pe::Section* section = image.find(std::string(".") + name);
    if (!section) continue;
    std::string file = path_join(work, name);
    BALLAST_CHECK(write_file_atomic(file, std::string(pe::contents(bytes, *section))));
    argv.push_back(std::string("--") + name + "=" + file);
  }
  if (!image.find(".linux")) return fail("image.measure", uki + " has no .linux section: not a UKI");
  for (const char* phase : kPcr11Phases) argv.push_back(std::string("--phase=") + phase);
  auto ran = BALLAST_TRY(with_context(run_checked(argv, SpawnOptions{.timeout = std::chrono::minutes(5)}),
                                      "predicting PCR 11 with " + measure_tool));
  auto j = nlohmann::json::parse(ran.out, nullptr, false);
  std::map<std::string, std::string> out;
  if (j.is_object() && j.contains("sha256") && j["sha256"].is_array()) {
    for (const auto& e : j["sha256"]) {
      if (integer_member(e, "pcr", -1) != 11 || string_member(e, "hash").empty()) continue;
      out[string_member(e, "phase")] = string_member(e, "hash");
    }
  }
  for (const char* phase : kPcr11Phases)
    if (!out.count(phase))
      return fail("image.measure", measure_tool + " gave no PCR 11 value for phase \"" + std::string(phase) + "\": " + ran.out);
  return out;
}

Status verify_signature(const std::string& cert, const std::string& path) {
  auto r = BALLAST_TRY(run_process({"sbverify", "--cert", cert, path}));
  if (!r.success())
    return fail("image.unsigned", path + " carries no signature that " + cert + " verifies: " + r.err + r.out);
  return ok();
}

Status sign_efi(const SigningKey& key, const std::string& input, const std::string& output) {
  const std::string partial = output + ".partial";
  auto signed_ = run_checked({"sbsign", "--key", key.key, "--cert", key.cert, "--output", partial, input});
  Status checked = signed_ ? verify_signature(key.cert, partial) : Status(tl::unexpected(signed_.error()));
  if (checked && ::rename(partial.c_str(), output.c_str()) != 0) checked = fail_errno("image.sign", errno, "cannot write " + output);
  if (!checked) {
    (void)remove_if_exists(partial);
    return with_context(std::move(checked), "signing " + input + " with " + key.key);
  }
  return ok();
}

}  // namespace ballast::images
