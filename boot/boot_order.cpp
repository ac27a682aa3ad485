// The loader's rules in one place: state from the counter, boot order, entry selection.
#include <algorithm>
#include <strings.h>

#include "boot/boot_control.hpp"

namespace ballast::boot {

const char* to_string(EntryState s) {
  switch (s) {
    case EntryState::good: return "good";
    case EntryState::indeterminate: return "indeterminate";
    case EntryState::bad: return "bad";
  }
  return "?";
}

const char* to_string(LoaderUpdate u) {
  switch (u) {
    case LoaderUpdate::updated: return "updated";
    case LoaderUpdate::unchanged: return "unchanged";
    case LoaderUpdate::not_shipped: return "not-shipped";
  }
  return "?";
}

EntryState state_of(const std::optional<BootCounter>& c) {
  if (!c) return EntryState::good;
  return c->left > 0 ? EntryState::indeterminate : EntryState::bad;
}

void sort_boot_order(std::vector<BootEntry>& entries) {
  std::stable_sort(entries.begin(), entries.end(), [](const BootEntry& a, const BootEntry& b) {
    bool a_out = a.has_counter && a.tries_left == 0, b_out = b.has_counter && b.tries_left == 0;
    if (a_out != b_out) return b_out;
    if (auto r = a.version <=> b.version; r != 0) return r > 0;
    if (int r = compare_uapi_versions(a.id, b.id); r != 0) return r > 0;
    if (a.has_counter && b.has_counter) {
      if (a.tries_left != b.tries_left) return a.tries_left > b.tries_left;
      return a.tries_done < b.tries_done;
    }
    return false;
  });
}

std::optional<size_t> select_boot_entry(const std::vector<BootEntry>& ordered, const std::string& oneshot_id,
                                        const std::string& default_id) {
  if (ordered.empty()) return std::nullopt;
  // systemd-boot folds the case of entry ids and of the variables naming them.
  auto find = [&ordered](const std::string& id) -> std::optional<size_t> {
    if (id.empty()) return std::nullopt;
    for (size_t i = 0; i < ordered.size(); ++i)
      if (strcasecmp(ordered[i].id.c_str(), id.c_str()) == 0) return i;
    return std::nullopt;
  };
  if (auto i = find(oneshot_id)) return i;
  if (auto i = find(default_id)) return i;
  return size_t{0};
}

}  // namespace ballast::boot
