#include <catch2/catch.hpp>

#include "repository/layout.hpp"
#include "repository/publisher.hpp"
#include "repository/release.hpp"

using namespace ballast::repository;

TEST_CASE("a repository's metadata, targets and chunks sit at the same places below a URL and a directory") {
  CHECK(layout::metadata_dir("https://r.example/os//") == "https://r.example/os/metadata");
  CHECK(layout::targets_dir("/srv/repo") == "/srv/repo/targets");
  CHECK(layout::chunks_dir("file:///srv/repo/") == "file:///srv/repo/targets/chunks");
  // What the host fetches chunks from is where the publisher stores them.
  CHECK(chunk_base_url("file:///srv/repo") == "file://" + chunk_store_dir("/srv/repo") + "/");
}
