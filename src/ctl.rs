//! The operator's command line client of the admin API.
