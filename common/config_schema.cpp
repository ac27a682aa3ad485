// Every configuration key ballast reads, in one place. README's key table is printed from this
// list by `ballast config keys --markdown`; add a key here and nowhere else.
#include "common/config.hpp"

namespace ballast {

const std::vector<ConfigKeySpec>& config_schema() {
  using T = ConfigType;
  // Duration bounds are in milliseconds.
  constexpr int64_t second = 1000, minute = 60 * second, hour = 60 * minute, day = 24 * hour;
  static const std::vector<ConfigKeySpec> schema = {
      // [update]
      {"update.channel", T::string, "\"stable\"", "Release channel to follow."},
      {"update.check_interval", T::duration, "\"1h\"", "Time between update checks.", {}, 1 * second, 30 * day},
      {"update.check_jitter", T::duration, "\"10m\"", "Random extra delay added to each check interval.", {}, 0, 7 * day},
      {"update.auto_apply", T::boolean, "true", "Stage new releases automatically; false: check and report only."},
      // [repository]
      {"repository.url", T::string, "", "Base URL of the TUF update repository (https:// or file://)."},
      {"repository.root", T::string, "\"/usr/lib/ballast/root.json\"",
       "Trust anchor shipped in the image; /etc/ballast/root.json overrides it when present."},
      {"repository.ca_bundle", T::string, "", "PEM CA bundle for HTTPS; empty: the system store."},
      {"repository.client_cert", T::string, "", "PEM client certificate for mutual TLS."},
      {"repository.client_key", T::string, "", "PEM private key of the client certificate."},
      {"repository.parallel_fetches", T::integer, "4", "Chunks fetched at once.", {}, 1, 64},
      {"repository.max_bandwidth", T::integer, "0", "Download limit in bytes per second, for all of a fetch's transfers together; 0: unlimited.", {}, 0,
       int64_t{1} << 40},
      {"repository.low_speed_limit", T::integer, "1024", "Bytes per second below which a transfer is stalled.", {}, 0,
       int64_t{1} << 30},
      {"repository.low_speed_time", T::duration, "\"30s\"", "How long a transfer may stay below low_speed_limit before it is abandoned and retried.", {}, 1 * second, 1 * hour},
      {"repository.retries", T::integer, "5", "Retries per chunk and per metadata file (connection errors, stalls, 408, 429, 5xx; Retry-After honoured) before giving up.", {}, 0, 100},
      {"repository.auth", T::choice, "\"none\"",
       "How repository requests are authorized: none, sas (a SAS token from repository.sas_token_file, for Azure Blob "
       "Storage), managed-identity (the VM's Azure managed identity, a token from IMDS; the identity needs Storage Blob "
       "Data Reader on the container).",
       {"none", "sas", "managed-identity"}},
      {"repository.sas_token_file", T::string, "", "auth = sas: file holding the SAS token (re-read when it changes)."},
      {"repository.identity_client_id", T::string, "",
       "auth = managed-identity: client id of a user-assigned identity; empty: the system-assigned one."},
      {"repository.max_metadata_size", T::integer, "8388608", "Largest metadata file accepted, in bytes.", {}, 1024,
       int64_t{1} << 30},
      // [boot]
      {"boot.loader", T::choice, "\"systemd-boot\"", "Boot loader backend.", {"systemd-boot", "grub"}},
      {"boot.tries", T::integer, "3", "Boot attempts a new entry gets before it counts as bad.", {}, 1, 99},
      {"boot.entry_type", T::choice, "\"auto\"",
       "Entries a staged release gets: uki (the release's unified kernel image in EFI/Linux/, systemd-boot only), "
       "type1 (kernel and initrd copied, a loader/entries/ file), auto (uki when the release has one and the loader is systemd-boot).",
       {"auto", "type1", "uki"}},
      // [reboot]
      {"reboot.strategy", T::choice, "\"immediate\"", "When to reboot into a staged update.",
       {"immediate", "periodic", "fleet_lock", "manual"}},
      {"reboot.window_days", T::string_list, "[\"Mon\", \"Tue\", \"Wed\", \"Thu\", \"Fri\", \"Sat\", \"Sun\"]",
       "periodic: days of the maintenance window."},
      {"reboot.window_start", T::string, "\"03:00\"", "periodic: start of the window, HH:MM."},
      {"reboot.window_length", T::duration, "\"1h\"", "periodic: length of the window.", {}, 1 * minute, 7 * day},
      {"reboot.time_zone", T::string, "\"UTC\"", "periodic: time zone of the window (tz database name)."},
      {"reboot.fleet_lock_url", T::string, "", "fleet_lock: base URL of the FleetLock server."},
      {"reboot.fleet_lock_group", T::string, "\"default\"", "fleet_lock: reboot group of this node."},
      {"reboot.fleet_lock_ca_bundle", T::string, "",
       "fleet_lock: PEM CA bundle for the FleetLock server's HTTPS; empty: the system store (not the repository's)."},
      {"reboot.fleet_lock_client_cert", T::string, "", "fleet_lock: PEM client certificate for the FleetLock server."},
      {"reboot.fleet_lock_client_key", T::string, "", "fleet_lock: PEM private key of the client certificate."},
      {"reboot.azure_scheduled_events", T::boolean, "false",
       "Azure: before each reboot, ask IMDS's Scheduled Events: a Freeze, Reboot, Redeploy, Preempt or Terminate of this VM "
       "holds it, a scheduled platform reboot is approved to boot the staged update; IMDS unreachable: the strategy decides alone. "
       "Combines with every strategy."},
      {"reboot.azure_recheck_interval", T::duration, "\"1m\"",
       "Azure: how often a reboot held by a scheduled event asks IMDS again.", {}, 1 * second, 1 * hour},
      // [node]
      {"node.id", T::string, "",
       "Stable node id; empty: on Azure (azure.instance_metadata) the VM's compute.vmId, else derived from /etc/machine-id."},
      {"node.wariness", T::number, "", "Rollout wariness in [0,1]; empty: derived from the node id."},
      // [health]
      {"health.check_timeout", T::duration, "\"60s\"", "Time limit for each health check.", {}, 1 * second, 1 * hour},
      {"health.check_failed_units", T::boolean, "true", "Count failed systemd units as a required check."},
      {"health.repository_unreachable_after", T::duration, "\"1h\"",
       "`ballast health --npd` reports a problem once the update repository has not been reached for longer than this.", {},
       1 * second, 30 * day},
      // [report]
      {"report.endpoint", T::string, "", "CloudEvents sink URL; empty: reporting off."},
      {"report.auth", T::choice, "\"bearer-file\"",
       "How events are authorized: bearer-file (report.bearer_token_file; empty: none), none, aeg-sas-key (Event Grid's "
       "access key from report.aeg_sas_key_file), managed-identity (the VM's Azure managed identity, audience "
       "https://eventgrid.azure.net; it needs EventGrid Data Sender on the topic).",
       {"bearer-file", "none", "aeg-sas-key", "managed-identity"}},
      {"report.format", T::choice, "\"structured\"",
       "structured: one event per POST (application/cloudevents+json); batch: the pending events as one JSON array "
       "(application/cloudevents-batch+json), as Azure Event Grid takes them.",
       {"structured", "batch"}},
      {"report.batch_max_events", T::integer, "100", "format = batch: events per POST at most.", {}, 1, 5000},
      {"report.batch_max_bytes", T::integer, "1048576",
       "format = batch: bytes per POST at most (Event Grid's limit is 1 MiB); a larger single event is sent alone.", {},
       1024, int64_t{64} << 20},
      {"report.bearer_token_file", T::string, "", "File holding a bearer token for the sink."},
      {"report.aeg_sas_key_file", T::string, "", "auth = aeg-sas-key: file holding the Event Grid topic's access key."},
      {"report.identity_client_id", T::string, "",
       "auth = managed-identity: client id of a user-assigned identity; empty: the system-assigned one."},
      {"report.ca_bundle", T::string, "", "PEM CA bundle for the sink's HTTPS; empty: the system store."},
      {"report.client_cert", T::string, "", "PEM client certificate for the sink."},
      {"report.client_key", T::string, "", "PEM private key of the client certificate."},
      {"report.heartbeat_interval", T::duration, "\"1h\"", "Time between heartbeat events; 0: none.", {}, 0, 7 * day},
      {"report.metrics_socket", T::string, "\"/run/ballast/metrics.sock\"",
       "Unix socket serving Prometheus text metrics; empty: not served."},
      {"report.metrics_textfile", T::string, "",
       "node_exporter textfile (e.g. /var/lib/node_exporter/ballast.prom); empty: none."},
      // [api]
      {"api.admin_group", T::string, "", "Group whose members may call the D-Bus API's mutating methods besides root."},
      // [kubernetes]
      {"kubernetes.enabled", T::boolean, "false",
       "Follow update requests from this node's Node annotations and report status there (README: Kubernetes)."},
      {"kubernetes.kubeconfig", T::string, "",
       "The kubelet's kubeconfig; empty: /etc/kubernetes/kubelet.conf, then /var/lib/kubelet/kubeconfig."},
      {"kubernetes.node_name", T::string, "", "Name of this node's Node; empty: from the kubeconfig user system:node:<name>, else the hostname."},
      {"kubernetes.rollback", T::choice, "\"agent\"",
       "Who rolls back a release that fails its health checks: agent (at once), or controller (marked bad and reported Failed; a rollback request decides).",
       {"agent", "controller"}},
      {"kubernetes.heartbeat_interval", T::duration, "\"1m\"", "Time between status heartbeats on the Node; 0: transitions only.", {}, 0, 1 * day},
      // [azure]
      {"azure.imds_endpoint", T::string, "\"http://169.254.169.254\"",
       "Base URL of Azure's Instance Metadata Service (tests point it at a local server)."},
      {"azure.instance_metadata", T::boolean, "false",
       "Azure: read the instance document from IMDS once per daemon run: node.id defaults to compute.vmId, and heartbeats "
       "carry vmId, resourceId, location, zone, vmSize and securityProfile. Off, or IMDS unreachable: the machine id as elsewhere."},
      // [retention]
      {"retention.keep", T::integer, "3", "Versions kept: booted, previous good, staged.", {}, 2, 100},
  };
  return schema;
}

}  // namespace ballast
