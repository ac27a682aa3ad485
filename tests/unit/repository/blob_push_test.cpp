#include <catch2/catch.hpp>

#include <algorithm>

#include "common/file.hpp"
#include "repository/blob_push.hpp"

using namespace ballast;
using namespace ballast::repository;

namespace {

// A repository directory with every kind of file the push orders.
struct RepoDir {
  std::string dir = *make_temp_dir("ballast-push");
  RepoDir() {
    for (const auto* f : {"targets/chunks/aa", "targets/chunks/bb", "targets/chunks/cc", "targets/chunks/dd",
                          "targets/releases/1.0/ab.manifest.json", "targets/releases/1.0/cd.uki.efi",
                          "metadata/1.root.json", "metadata/2.root.json", "metadata/3.targets.json",
                          "metadata/3.snapshot.json", "metadata/1.base.json", "metadata/root.json",
                          "metadata/timestamp.json"})
      write(f, std::string("content of ") + f);
  }
  ~RepoDir() { (void)remove_tree(dir); }
  void write(const std::string& rel, const std::string& text) const {
    auto path = dir + "/" + rel;
    REQUIRE(make_dirs(path.substr(0, path.rfind('/'))));
    REQUIRE(write_file_atomic(path, text));
  }
};

size_t index_of(const std::vector<std::string>& v, const std::string& name) {
  return static_cast<size_t>(std::find(v.begin(), v.end(), name) - v.begin());
}

}  // namespace

TEST_CASE("a push uploads every chunk before any other target, the targets before the metadata, and "
          "timestamp.json last",
          "[repository][push]") {
  RepoDir r;
  FakeBlobStore store;
  PushOptions options;
  options.parallel = 4;
  auto summary = push_repository(r.dir, store, options);
  REQUIRE(summary);
  CHECK(summary->uploaded == 13);
  REQUIRE(store.puts.size() == 13);
  CHECK(store.puts.back() == "metadata/timestamp.json");
  size_t last_chunk = 0, first_other_target = store.puts.size(), last_target = 0;
  size_t first_metadata = store.puts.size(), last_versioned = 0, first_unversioned = store.puts.size();
  for (size_t i = 0; i < store.puts.size(); ++i) {
    const auto& n = store.puts[i];
    if (n.rfind("targets/chunks/", 0) == 0) last_chunk = i;
    else if (n.rfind("targets/", 0) == 0) first_other_target = std::min(first_other_target, i);
    if (n.rfind("targets/", 0) == 0) last_target = i;
    if (n.rfind("metadata/", 0) == 0) first_metadata = std::min(first_metadata, i);
    if (n.rfind("metadata/", 0) == 0 && std::isdigit(static_cast<unsigned char>(n[9]))) last_versioned = i;
    if (n == "metadata/root.json") first_unversioned = i;
  }
  CHECK(last_chunk < first_other_target);
  CHECK(last_target < first_metadata);
  CHECK(last_versioned < first_unversioned);
  CHECK(index_of(store.puts, "metadata/1.base.json") < index_of(store.puts, "metadata/timestamp.json"));
  // What was uploaded carries the MD5 a second push compares.
  CHECK(store.blobs["targets/chunks/aa"].second == content_md5("content of targets/chunks/aa"));
}

TEST_CASE("a second push of the same repository uploads nothing; a changed file or a blob without an MD5 is "
          "uploaded again",
          "[repository][push]") {
  RepoDir r;
  FakeBlobStore store;
  REQUIRE(push_repository(r.dir, store));
  store.puts.clear();
  auto again = push_repository(r.dir, store);
  REQUIRE(again);
  CHECK(again->uploaded == 0);
  CHECK(again->skipped == 13);
  CHECK(store.puts.empty());

  r.write("metadata/timestamp.json", "content of metadata/timestamp.jsoN");  // same length, new bytes
  store.blobs["targets/chunks/bb"].second.clear();                            // uploaded by a tool without MD5
  auto third = push_repository(r.dir, store);
  REQUIRE(third);
  CHECK(third->uploaded == 2);
  CHECK(store.puts == std::vector<std::string>{"targets/chunks/bb", "metadata/timestamp.json"});
}

TEST_CASE("a failed upload stops the push before the next phase: no metadata after a chunk failed",
          "[repository][push]") {
  RepoDir r;
  FakeBlobStore store;
  store.fail_put = "targets/chunks/bb";
  PushOptions options;
  options.parallel = 2;
  auto summary = push_repository(r.dir, store, options);
  REQUIRE_FALSE(summary);
  for (const auto& n : store.puts) CHECK(n.rfind("targets/chunks/", 0) == 0);
}

TEST_CASE("a push refuses a directory that is not a repository or has no timestamp, and a URL that names no "
          "container, before any upload",
          "[repository][push]") {
  FakeBlobStore store;
  auto missing = push_repository("/nonexistent/repo", store);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().code == "push.not-a-repository");

  RepoDir r;
  REQUIRE(remove_if_exists(r.dir + "/metadata/timestamp.json"));
  auto no_timestamp = push_repository(r.dir, store);
  REQUIRE_FALSE(no_timestamp);
  CHECK(no_timestamp.error().code == "push.no-timestamp");
  CHECK(store.puts.empty());

  CHECK(check_container_url("https://acct.blob.core.windows.net/releases"));
  CHECK(check_container_url("https://acct.blob.core.windows.net/releases/os/stable"));
  CHECK(check_container_url("https://127.0.0.1:10000/devstoreaccount1/releases"));
  for (const auto* bad : {"acct.blob.core.windows.net/releases", "ftp://acct/releases", "https://acct.blob.core.windows.net",
                          "https://acct.blob.core.windows.net/", "https:///releases",
                          "https://acct.blob.core.windows.net/releases?sv=2021&sig=x"}) {
    INFO(bad);
    auto st = check_container_url(bad);
    REQUIRE_FALSE(st);
    CHECK(st.error().code == "push.bad-url");
  }
}

TEST_CASE("content_md5 is the base64 of the MD5 digest, as Blob Storage's Content-MD5", "[repository][push]") {
  CHECK(content_md5("") == "1B2M2Y8AsgTpgAmY7PhCfg==");
  CHECK(content_md5("hello") == "XUFAKrxLKna5cZ2REBfFkg==");
}
