// `ballast repo push DIR --to URL --auth …`: uploads a local repository to Azure Blob Storage in
// the safe order of repository/blob_push.hpp. The credentials are the existing providers (one
// decision: agent/credentials.cpp for sas and managed-identity, the bearer-file provider for a
// token file such as `az account get-access-token`'s); TLS, retries and the IMDS endpoint come
// from the configuration's repository.* and azure.* keys.
#include <unistd.h>

#include <iostream>

#include "agent/cli/verb.hpp"
#include "agent/credentials.hpp"
#include "repository/blob_push.hpp"

namespace ballast::cli {
namespace {

struct PushArgs {
  std::string dir, to, auth, sas_token_file, token_file;
  unsigned parallel = 4;
};

PushArgs& args() {
  static PushArgs a;
  return a;
}

Result<repository::HttpSettings> push_http_settings(const GlobalOptions& g, const PushArgs& a) {
  auto config = BALLAST_TRY(g.load_config());
  std::string toml = "[repository]\n";
  if (a.auth == "azure-cli-token-file") {
    if (a.token_file.empty()) return fail("push.usage", "--auth azure-cli-token-file needs --token-file");
  } else {
    toml += "auth = " + Config::format_value(a.auth) + "\n";
    if (a.auth == "sas") {
      if (a.sas_token_file.empty()) return fail("push.usage", "--auth sas needs --sas-token-file");
      toml += "sas_token_file = " + Config::format_value(a.sas_token_file) + "\n";
    }
  }
  BALLAST_CHECK(config.merge_text(toml, "ballast repo push"));
  auto settings = agent::repository_http_settings(config);
  if (a.auth == "azure-cli-token-file") settings.credentials = repository::bearer_file_credentials(a.token_file);
  return settings;
}

int run_push(const GlobalOptions& g) {
  const auto& a = args();
  // Everything that can be checked is checked before the first request: nothing half-uploaded.
  if (auto st = repository::check_container_url(a.to); !st) return report_error(st.error());
  if (auto phases = repository::push_phases(a.dir); !phases) return report_error(phases.error());
  auto settings = push_http_settings(g, a);
  if (!settings) return report_error(settings.error());
  auto store = repository::make_blob_store(a.to, *settings);

  repository::PushOptions options;
  options.parallel = a.parallel;
  const bool bar = !g.json && ::isatty(STDERR_FILENO);
  if (bar)
    options.on_progress = [](const repository::PushProgress& p) {
      std::cerr << "\r\033[K" << p.done_bytes << "/" << p.total_bytes << " bytes, " << p.uploaded << " uploaded, "
                << p.skipped << " unchanged" << std::flush;
    };
  auto summary = repository::push_repository(a.dir, *store, options);
  if (bar) std::cerr << "\r\033[K" << std::flush;
  if (!summary) return report_error(summary.error());
  if (g.json) {
    print_json({{"uploaded", summary->uploaded},
                {"skipped", summary->skipped},
                {"uploaded_bytes", summary->uploaded_bytes},
                {"skipped_bytes", summary->skipped_bytes}});
  } else {
    std::cout << "uploaded " << summary->uploaded << " (" << summary->uploaded_bytes << " bytes), skipped "
              << summary->skipped << " unchanged (" << summary->skipped_bytes << " bytes)\n";
  }
  return 0;
}

}  // namespace

// Listed in repo_verb.cpp's kRepoSubcommands.
void setup_repo_push(CLI::App& repo, VerbContext& ctx) {
  auto& a = args();
  auto* cmd = repo.add_subcommand(
      "push", "Upload a repository to Azure Blob Storage: chunks, targets, versioned metadata, timestamp.json last");
  cmd->add_option("DIR", a.dir, "Repository directory")->required();
  cmd->add_option("--to", a.to, "https://ACCOUNT.blob.core.windows.net/CONTAINER[/PREFIX]")->required();
  cmd->add_option("--auth", a.auth, "managed-identity, sas or azure-cli-token-file")
      ->required()
      ->check(CLI::IsMember({"managed-identity", "sas", "azure-cli-token-file"}));
  cmd->add_option("--sas-token-file", a.sas_token_file, "--auth sas: file holding a SAS with write permission");
  cmd->add_option("--token-file", a.token_file,
                  "--auth azure-cli-token-file: file holding a bearer token (az account get-access-token "
                  "--resource https://storage.azure.com --query accessToken -o tsv)");
  cmd->add_option("--parallel", a.parallel, "Uploads at once")->capture_default_str()->check(CLI::Range(1u, 64u));
  cmd->callback([&ctx] { ctx.action = [&g = ctx.global] { return run_push(g); }; });
}

}  // namespace ballast::cli
