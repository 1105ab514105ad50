//! The one integration-test binary: drives the real `dispo` binary against the real simulator
//! over real TLS. One module per area.

mod alert;
mod bounded;
mod cdp;
mod demo;
mod deploy;
mod evidence;
mod follow;
mod hostile;
mod import;
mod kpi;
mod live;
mod nodes;
mod offline;
mod operator;
mod pg_tls;
mod probe;
mod publication;
mod report;
mod rev2;
mod sim;
mod sim_support;
mod spill;
mod status;
mod status_vantage;
mod support;
mod vantage;
mod vantage_kpi;
