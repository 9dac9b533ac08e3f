//! The registrar: REGISTER rules and the location table.
