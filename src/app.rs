//! Wiring: starts the store, directory, registrar and every listener.
