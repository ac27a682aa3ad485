#include "repository/credentials.hpp"

#include <sys/stat.h>

#include <algorithm>

#include "common/file.hpp"

namespace ballast::repository {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  size_t start = 0;
  while (start < s.size() && (s[start] == ' ' || s[start] == '\t')) ++start;
  return s.substr(start);
}

Result<std::string> read_secret(const std::string& path, const char* what) {
  auto bytes = read_file(path, 64 << 10);
  if (!bytes) return fail("auth.unreadable", std::string("cannot read the ") + what + " file " + path);
  auto secret = trimmed(std::move(*bytes));
  if (secret.empty()) return fail("auth.empty", std::string("the ") + what + " file " + path + " is empty");
  return secret;
}

class NoCredentials final : public CredentialProvider {
 public:
  Result<Authorization> authorize() override { return Authorization{}; }
  std::string forbidden_hint() const override {
    return "no credentials were sent: set repository.auth (managed-identity or sas) for a container without "
           "anonymous access";
  }
};

class HeaderFile final : public CredentialProvider {
 public:
  HeaderFile(std::string prefix, std::string path, std::string what)
      : prefix_(std::move(prefix)), path_(std::move(path)), what_(std::move(what)) {}
  Result<Authorization> authorize() override {
    auto secret = BALLAST_TRY(read_secret(path_, what_.c_str()));
    if (secret.find_first_of("\r\n") != std::string::npos)
      return fail("auth.malformed", "the " + what_ + " file " + path_ + " does not hold one line");
    return Authorization{{prefix_ + secret}, ""};
  }
  // The file is read at every request: a rotated secret is picked up by the repeat.
  bool refresh_after_unauthorized() override { return true; }
  std::string forbidden_hint() const override { return "the " + what_ + " in " + path_ + " is not allowed this"; }

 private:
  std::string prefix_, path_, what_;
};

class SasFile final : public CredentialProvider {
 public:
  explicit SasFile(std::string path) : path_(std::move(path)) {}
  Result<Authorization> authorize() override {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return fail_errno("auth.unreadable", errno, "cannot read the SAS token file " + path_);
    std::lock_guard lock(mu_);
    bool changed = st.st_mtim.tv_sec != mtime_.tv_sec || st.st_mtim.tv_nsec != mtime_.tv_nsec ||
                   st.st_ino != inode_ || st.st_size != size_;
    if (token_.empty() || changed) {
      auto token = read_secret(path_, "SAS token");
      if (!token) return tl::unexpected(std::move(token.error()));
      token_ = std::move(*token);
      if (token_.size() > 1 && token_[0] == '?') token_.erase(0, 1);
      mtime_ = st.st_mtim;
      inode_ = st.st_ino;
      size_ = st.st_size;
    }
    return Authorization{{}, token_};
  }
  bool refresh_after_unauthorized() override {
    std::lock_guard lock(mu_);
    token_.clear();
    return true;
  }
  std::string forbidden_hint() const override {
    return "the SAS token in " + path_ + " is expired, lacks the read (or write) permission, or was revoked";
  }

 private:
  std::string path_;
  std::mutex mu_;
  std::string token_;
  timespec mtime_{};
  ino_t inode_ = 0;
  off_t size_ = -1;
};

}  // namespace

std::shared_ptr<CredentialProvider> no_credentials() { return std::make_shared<NoCredentials>(); }
std::shared_ptr<CredentialProvider> header_file_credentials(std::string prefix, std::string path, std::string what) {
  return std::make_shared<HeaderFile>(std::move(prefix), std::move(path), std::move(what));
}
std::shared_ptr<CredentialProvider> bearer_file_credentials(std::string path) {
  return header_file_credentials("Authorization: Bearer ", std::move(path), "bearer token");
}
std::shared_ptr<CredentialProvider> sas_credentials(std::string path) {
  return std::make_shared<SasFile>(std::move(path));
}

namespace {
std::string azure_error_code(const std::string& body) {
  auto b = body.find("<Code>");
  if (b == std::string::npos) return "";
  auto e = body.find("</Code>", b);
  if (e == std::string::npos) return "";
  return body.substr(b + 6, std::min<size_t>(e - b - 6, 80));
}
}  // namespace

bool credentials_rejected(long status, const std::string& body) {
  return status == 401 || (status == 403 && azure_error_code(body) == "AuthenticationFailed");
}

std::string forbidden_message(const std::string& url, const std::string& body, const CredentialProvider* credentials) {
  const std::string code = azure_error_code(body);
  std::string out = url + ": HTTP 403 forbidden" + (code.empty() ? "" : " (" + code + ")");
  if (code == "AuthorizationPermissionMismatch")
    return out + ": the identity is authenticated but has no role assignment allowing this on the container "
                 "(Storage Blob Data Reader to read, Storage Blob Data Contributor to push)";
  std::string hint = credentials ? credentials->forbidden_hint() : "";
  return hint.empty() ? out : out + ": " + hint;
}

std::string with_query(const std::string& url, const std::string& query) {
  if (query.empty()) return url;
  auto hash = url.find('#');
  std::string base = url.substr(0, hash);
  std::string out = base + (base.find('?') == std::string::npos ? "?" : "&") + query;
  if (hash != std::string::npos) out += url.substr(hash);
  return out;
}

}  // namespace ballast::repository
