//! Live Art. 33 detection and alert delivery (issue 4).
//!
//! In: observations as the probe daemon records them, and the `[alerts]` table of the probe
//! configuration. Out: alerts delivered to webhooks, Slack, Alertmanager and e-mail through a
//! durable outbox in SQLite.

use serde::Deserialize;

/// The `[alerts]` table of a probe configuration file. Parsed by the config loader with the rest
/// of the file (unknown keys are errors there too).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {}
