#include "repository/layout.hpp"

namespace ballast::repository::layout {
namespace {

std::string under(std::string_view base, std::string_view rel) {
  while (!base.empty() && base.back() == '/') base.remove_suffix(1);
  return std::string(base) + "/" + std::string(rel);
}

}  // namespace

std::string metadata_dir(std::string_view base) { return under(base, "metadata"); }
std::string targets_dir(std::string_view base) { return under(base, "targets"); }
std::string chunks_dir(std::string_view base) { return under(base, "targets/chunks"); }
std::string build_dir(std::string_view base) { return under(base, "build"); }

}  // namespace ballast::repository::layout
