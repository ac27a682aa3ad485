// The repository's layout, one place for it: the same relative paths below a URL (what hosts
// fetch) and below a directory (what `ballast repo` writes).
//   metadata/<file>               TUF metadata (N.root.json, timestamp.json, N.snapshot.json, …)
//   targets/<dir>/<sha256>.<base> TUF targets such as releases/<v>/manifest.json
//   targets/chunks/<sha256>       chunks: plain files, trusted through the manifest's hashes
//   build/                        the publisher's own state, never uploaded or fetched
#pragma once

#include <string>
#include <string_view>

namespace ballast::repository::layout {

// `base` (a URL or a directory; trailing slashes ignored) joined with each part of the layout.
std::string metadata_dir(std::string_view base);
std::string targets_dir(std::string_view base);
std::string chunks_dir(std::string_view base);
std::string build_dir(std::string_view base);

}  // namespace ballast::repository::layout
