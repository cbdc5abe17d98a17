//! Every emulator-backed integration test, in one binary so that the whole run shares
//! one moto server (started on first use, gone with the process). Tests isolate
//! themselves by unique resource names, so they run in parallel.

mod env_rewriter;
mod failback;
mod fidelity_dynamodb;
mod fidelity_rds;
mod fidelity_ssm_agent;
mod fidelity_stepfunctions;
mod foundation;
mod health_monitor;
mod infra;
mod rds_promoter;
mod region_switch;
mod replay;
mod stream_replicator;
