#include "boot/bls.hpp"

#include <climits>

namespace ballast::boot {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Decimal of any width; leading zeros allowed; fails beyond INT_MAX.
std::optional<int> parse_number(std::string_view s) {
  if (s.empty()) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
    if (v > INT_MAX) return std::nullopt;
  }
  return static_cast<int>(v);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<EntryName> parse_entry_name(std::string_view name) {
  auto ends_with = [&](std::string_view suffix) {
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  };
  EntryName out;
  out.uki = ends_with(".efi");
  if (!out.uki && !ends_with(".conf"))
    return fail("boot.bad-entry-name", "not a .conf or .efi entry file name: " + std::string(name));
  std::string_view base = name.substr(0, name.size() - (out.uki ? 4 : 5));
  auto plus = base.rfind('+');
  if (plus == std::string_view::npos) {
    out.stem = std::string(base);
    return out;
  }
  std::string_view count = base.substr(plus + 1);
  std::string_view left_text = count, done_text;
  if (auto dash = count.find('-'); dash != std::string_view::npos) {
    left_text = count.substr(0, dash);
    done_text = count.substr(dash + 1);
    if (done_text.empty())
      return fail("boot.bad-entry-name", "boot counter without tries done: " + std::string(name));
  }
  auto left = parse_number(left_text);
  auto done = done_text.empty() ? std::optional<int>(0) : parse_number(done_text);
  if (!left || !done) return fail("boot.bad-entry-name", "malformed boot counter in " + std::string(name));
  if (plus == 0) return fail("boot.bad-entry-name", "entry name without a stem: " + std::string(name));
  out.stem = std::string(base.substr(0, plus));
  out.counter = BootCounter{*left, *done};
  return out;
}

std::string format_entry_name(const std::string& stem, const std::optional<BootCounter>& counter, bool uki) {
  std::string out = stem;
  if (counter) out += "+" + std::to_string(counter->left) + "-" + std::to_string(counter->done);
  return out + (uki ? ".efi" : ".conf");
}

std::string escape_version(std::string_view version) {
  std::string out;
  for (char c : version) {
    if (c == '_') out += "__";
    else if (c == '~') out += "_t";
    else if (c == '^') out += "_c";
    else out += c;
  }
  return out;
}

std::string stem_of_version(std::string_view version) { return std::string(kEntryPrefix) + escape_version(version); }

std::optional<std::string> version_of_stem(std::string_view stem) {
  if (stem.size() <= kEntryPrefix.size() || stem.substr(0, kEntryPrefix.size()) != kEntryPrefix)
    return std::nullopt;
  std::string out;
  for (size_t i = kEntryPrefix.size(); i < stem.size(); ++i) {
    if (stem[i] != '_') {
      out += stem[i];
      continue;
    }
    if (++i == stem.size()) return std::nullopt;
    if (stem[i] == '_') out += '_';
    else if (stem[i] == 't') out += '~';
    else if (stem[i] == 'c') out += '^';
    else return std::nullopt;
  }
  return out;
}

Result<EntryFile> parse_entry(std::string_view text) {
  EntryFile e;
  size_t line_no = 0;
  if (text.find('\0') != std::string_view::npos) return fail("boot.bad-entry", "entry holds a NUL byte");
  while (!text.empty()) {
    auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++line_no;
    line = trim(line);
    if (line.empty() || line.front() == '#') continue;
    auto sp = line.find_first_of(" \t");
    if (sp == std::string_view::npos)
      return fail("boot.bad-entry", "line " + std::to_string(line_no) + ": key without a value");
    std::string key(line.substr(0, sp));
    std::string value(trim(line.substr(sp + 1)));
    if (key == "title") e.title = value;
    else if (key == "version") e.version = value;
    else if (key == "sort-key") e.sort_key = value;
    else if (key == "machine-id") e.machine_id = value;
    else if (key == "linux") e.linux_path = value;
    else if (key == "initrd") e.initrd_paths.push_back(value);
    else if (key == "options") e.options = e.options.empty() ? value : e.options + " " + value;
    else e.other.emplace_back(key, value);
  }
  if (e.linux_path.empty()) return fail("boot.bad-entry", "entry has no `linux` line");
  return e;
}

std::string format_entry(const EntryFile& e) {
  std::string out;
  auto line = [&out](const std::string& k, const std::string& v) {
    if (!v.empty()) out += k + " " + v + "\n";
  };
  line("title", e.title);
  line("version", e.version);
  line("sort-key", e.sort_key);
  line("machine-id", e.machine_id);
  line("linux", e.linux_path);
  for (const auto& i : e.initrd_paths) line("initrd", i);
  line("options", e.options);
  for (const auto& [k, v] : e.other) line(k, v);
  return out;
}

}  // namespace ballast::boot
