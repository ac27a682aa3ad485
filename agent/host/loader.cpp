#include "agent/host/loader.hpp"

#include "common/log.hpp"
#include "images/uki.hpp"

namespace ballast::host {

std::string release_loader_path(const snapshot::HostLayout& host, const Version& version) {
  return host.deployment(version) + images::kSignedLoaderPath;
}

Result<boot::LoaderUpdate> update_loader(const snapshot::HostLayout& host, boot::BootControl& boot,
                                         const Version& version) {
  auto done = BALLAST_TRY(with_context(boot.update_loader(release_loader_path(host, version)),
                                       "updating the boot loader to release " + version.str() + "'s"));
  if (done == boot::LoaderUpdate::updated) log::notice("the boot loader on the ESP is now release " + version.str() + "'s");
  return done;
}

}  // namespace ballast::host
