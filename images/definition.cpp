#include "images/definition.hpp"

#include <regex>
#include <set>
#include <toml++/toml.h>

#include "common/file.hpp"

namespace ballast::images {

namespace {

// Reads a TOML table against a fixed set of keys; every error names file, line and key.
class TableReader {
 public:
  TableReader(const toml::table& t, std::string file, std::string prefix)
      : t_(t), file_(std::move(file)), prefix_(std::move(prefix)) {}

  Status check_keys(const std::set<std::string>& allowed) const {
    for (const auto& [k, node] : t_) {
      std::string key(k.str());
      if (!allowed.count(key)) return fail("image.unknown-key", where(node) + ": unknown key '" + full(key) + "'");
    }
    return ok();
  }
  Result<std::optional<std::string>> string(const std::string& key) const {
    const toml::node* n = t_.get(key);
    if (!n) return std::optional<std::string>();
    if (!n->is_string()) return wrong(*n, key, "a string");
    return std::optional<std::string>(*n->value<std::string>());
  }
  Result<std::optional<bool>> boolean(const std::string& key) const {
    const toml::node* n = t_.get(key);
    if (!n) return std::optional<bool>();
    if (!n->is_boolean()) return wrong(*n, key, "a boolean");
    return std::optional<bool>(*n->value<bool>());
  }
  Result<std::optional<int64_t>> integer(const std::string& key) const {
    const toml::node* n = t_.get(key);
    if (!n) return std::optional<int64_t>();
    if (!n->is_integer()) return wrong(*n, key, "an integer");
    return std::optional<int64_t>(*n->value<int64_t>());
  }
  Result<std::vector<std::string>> strings(const std::string& key) const {
    std::vector<std::string> out;
    const toml::node* n = t_.get(key);
    if (!n) return out;
    const auto* arr = n->as_array();
    if (!arr) return wrong(*n, key, "an array of strings");
    for (const auto& item : *arr) {
      if (!item.is_string()) return wrong(item, key, "an array of strings");
      out.push_back(*item.value<std::string>());
    }
    return out;
  }
  Result<const toml::table*> table(const std::string& key) const {
    const toml::node* n = t_.get(key);
    if (!n) return static_cast<const toml::table*>(nullptr);
    if (!n->is_table()) return wrong(*n, key, "a table");
    return n->as_table();
  }
  std::string where(const toml::node& n) const { return file_ + ":" + std::to_string(n.source().begin.line); }
  std::string full(const std::string& key) const { return prefix_.empty() ? key : prefix_ + "." + key; }
  tl::unexpected<Error> wrong(const toml::node& n, const std::string& key, const std::string& type) const {
    return fail("image.wrong-type", where(n) + ": key '" + full(key) + "' must be " + type);
  }
  tl::unexpected<Error> bad(const std::string& key, const std::string& why) const {
    const toml::node* n = t_.get(key);
    return fail("image.bad-value", (n ? where(*n) : file_) + ": key '" + full(key) + "' " + why);
  }
  const toml::table& raw() const { return t_; }

 private:
  const toml::table& t_;
  std::string file_, prefix_;
};

// Where an image's file may go: absolute, and no '..' to climb out of the image.
bool is_image_path(const std::string& p) {
  return !p.empty() && p[0] == '/' && p.find("/../") == std::string::npos &&
         !(p.size() >= 3 && p.compare(p.size() - 3, 3, "/..") == 0);
}

std::string resolve(const std::string& base_dir, const std::string& p) {
  return p.empty() || p[0] == '/' ? p : path_join(base_dir, p);
}

}  // namespace

Result<ImageDefinition> parse_definition(std::string_view text, const std::string& file) {
  toml::table root;
  try {
    root = toml::parse(text, file);
  } catch (const toml::parse_error& e) {
    return fail("image.syntax", file + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description()));
  }
  std::string dir = file.find('/') == std::string::npos ? "." : file.substr(0, file.rfind('/'));
  ImageDefinition def;
  def.file = file;
  TableReader top(root, file, "");
  BALLAST_CHECK(top.check_keys({"name", "description", "overlays", "base", "kernel", "os_release", "files", "services", "ballast"}));
  auto name = BALLAST_TRY(top.string("name"));
  if (!name) return fail("image.missing-key", file + ": key 'name' is required");
  static const std::regex id_re("[a-z0-9][a-z0-9._-]*");
  if (!std::regex_match(*name, id_re)) return top.bad("name", "must be lower-case letters, digits, '.', '_' or '-'");
  def.name = *name;
  def.description = BALLAST_TRY(top.string("description")).value_or("");
  for (const auto& o : BALLAST_TRY(top.strings("overlays"))) def.overlays.push_back(resolve(dir, o));

  if (auto* t = BALLAST_TRY(top.table("base"))) {
    TableReader base(*t, file, "base");
    BALLAST_CHECK(base.check_keys({"kind", "busybox", "suite", "variant", "mirror", "packages", "packages_after", "files", "path"}));
    std::string kind = BALLAST_TRY(base.string("kind")).value_or("busybox");
    if (kind == "busybox") def.base.kind = BaseKind::busybox;
    else if (kind == "debootstrap") def.base.kind = BaseKind::debootstrap;
    else if (kind == "directory") def.base.kind = BaseKind::directory;
    else if (kind == "tarball") def.base.kind = BaseKind::tarball;
    else return base.bad("kind", "is \"" + kind + "\" but must be one of: busybox, debootstrap, directory, tarball");
    def.base.busybox = BALLAST_TRY(base.string("busybox")).value_or(def.base.busybox);
    def.base.suite = BALLAST_TRY(base.string("suite")).value_or(def.base.suite);
    def.base.variant = BALLAST_TRY(base.string("variant")).value_or(def.base.variant);
    def.base.mirror = BALLAST_TRY(base.string("mirror")).value_or(def.base.mirror);
    def.base.packages = BALLAST_TRY(base.strings("packages"));
    def.base.packages_after = BALLAST_TRY(base.strings("packages_after"));
    if (!def.base.packages_after.empty() && def.base.kind != BaseKind::debootstrap)
      return base.bad("packages_after", "is only for kind debootstrap");
    if (auto* files = BALLAST_TRY(base.table("files"))) {
      if (def.base.kind != BaseKind::debootstrap) return base.bad("files", "is only for kind debootstrap");
      TableReader ft(*files, file, "base.files");
      for (const auto& [k, node] : *files) {
        std::string path(k.str());
        if (!is_image_path(path))
          return ft.bad(path, "must be an absolute path inside the image without '..'");
        auto source = BALLAST_TRY(ft.string(path));
        def.base.files_before[path] = resolve(dir, *source);
      }
    }
    def.base.path = resolve(dir, BALLAST_TRY(base.string("path")).value_or(""));
    if ((def.base.kind == BaseKind::directory || def.base.kind == BaseKind::tarball) && def.base.path.empty())
      return fail("image.missing-key", base.where(*t) + ": key 'base.path' is required for kind " + kind);
  }

  if (auto* t = BALLAST_TRY(top.table("kernel"))) {
    TableReader k(*t, file, "kernel");
    BALLAST_CHECK(k.check_keys({"version", "stand_in", "cmdline", "uki"}));
    def.kernel.version = BALLAST_TRY(k.string("version")).value_or("");
    def.kernel.stand_in = BALLAST_TRY(k.boolean("stand_in")).value_or(false);
    def.kernel.cmdline = BALLAST_TRY(k.string("cmdline")).value_or("");
    def.kernel.uki = BALLAST_TRY(k.boolean("uki")).value_or(false);
    if (def.kernel.stand_in && def.kernel.version.empty())
      return fail("image.missing-key", k.where(*t) + ": key 'kernel.version' is required with stand_in = true");
  }

  if (auto* t = BALLAST_TRY(top.table("os_release"))) {
    TableReader o(*t, file, "os_release");
    static const std::regex field_re("[A-Z][A-Z0-9_]*");
    for (const auto& [k, node] : *t) {
      std::string key(k.str());
      if (!std::regex_match(key, field_re)) return o.bad(key, "is not an os-release field name (A-Z, 0-9, _)");
      if (key == "IMAGE_ID" || key == "IMAGE_VERSION") return o.bad(key, "is set by the builder from name and --version");
      auto v = BALLAST_TRY(o.string(key));
      def.os_release[key] = *v;
    }
  }

  if (const toml::node* n = root.get("files")) {
    const auto* arr = n->as_array();
    if (!arr || !arr->is_array_of_tables()) return top.wrong(*n, "files", "an array of tables ([[files]])");
    for (const auto& item : *arr) {
      TableReader f(*item.as_table(), file, "files");
      BALLAST_CHECK(f.check_keys({"path", "content", "source", "mode", "uid", "gid"}));
      FileSpec spec;
      auto path = BALLAST_TRY(f.string("path"));
      if (!path || !is_image_path(*path))
        return fail("image.bad-value", f.where(item) + ": key 'files.path' must be an absolute path without '..'");
      spec.path = *path;
      auto content = BALLAST_TRY(f.string("content"));
      auto source = BALLAST_TRY(f.string("source"));
      if (content.has_value() == source.has_value())
        return fail("image.bad-value", f.where(item) + ": " + spec.path + ": exactly one of 'content' and 'source' is needed");
      spec.content = content.value_or("");
      spec.source = source ? resolve(dir, *source) : "";
      auto mode = BALLAST_TRY(f.integer("mode")).value_or(0644);
      if (mode < 0 || mode > 07777) return f.bad("mode", "must be a permission mode such as 0o644");
      spec.mode = static_cast<mode_t>(mode);
      spec.uid = static_cast<uid_t>(BALLAST_TRY(f.integer("uid")).value_or(0));
      spec.gid = static_cast<gid_t>(BALLAST_TRY(f.integer("gid")).value_or(0));
      def.files.push_back(std::move(spec));
    }
  }

  if (auto* t = BALLAST_TRY(top.table("services"))) {
    TableReader s(*t, file, "services");
    BALLAST_CHECK(s.check_keys({"enable"}));
    def.enable_services = BALLAST_TRY(s.strings("enable"));
  }

  if (auto* t = BALLAST_TRY(top.table("ballast"))) {
    TableReader b(*t, file, "ballast");
    BALLAST_CHECK(b.check_keys({"root_json", "config", "install"}));
    def.root_json = resolve(dir, BALLAST_TRY(b.string("root_json")).value_or(""));
    def.config = resolve(dir, BALLAST_TRY(b.string("config")).value_or(""));
    def.install_ballast = BALLAST_TRY(b.boolean("install")).value_or(false);
  }
  return def;
}

Result<ImageDefinition> load_definition(const std::string& path) {
  auto text = BALLAST_TRY(read_file(path, 1 << 20));
  return parse_definition(text, path);
}

}  // namespace ballast::images
