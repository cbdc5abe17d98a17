//! Nothing to import: the emulator tests are the test target `emulator` (`tests/main.rs`),
//! one binary so that every test shares one moto server. Run them with
//! `cargo test -p failover-emulator-tests`.
