// The three-way /etc merge of a new deployment, with OSTree's semantics: whatever the admin
// changed in the running deployment's /etc, relative to the image it came from, is a local change
// and is carried whole into the new deployment; everything else comes from the new image.
#pragma once

#include <string>
#include <vector>

#include "common/result.hpp"

namespace ballast::snapshot {

struct EtcMergeReport {
  std::vector<std::string> carried;   // modified or added locally; copied from the live /etc
  std::vector<std::string> deleted;   // deleted locally; removed from the new /etc
  std::vector<std::string> metadata;  // directories whose mode/owner/xattrs were carried
};

// `old_image_etc`: the pristine /etc of the image the host runs (its read-only slot).
// `old_live_etc`:  the running deployment's writable /etc.
// `target_etc`:    the new deployment's /etc, holding the new image's files; changed in place.
// A path counts as changed when its type, content, mode, owner, xattrs or link target differ.
// Files are copied with reflinks where the filesystem allows. Paths never leave the three roots.
Result<EtcMergeReport> merge_etc(const std::string& old_image_etc, const std::string& old_live_etc,
                                 const std::string& target_etc);

}  // namespace ballast::snapshot
