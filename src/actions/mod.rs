//! Operations that touch several parts at once: deactivate, reactivate, sign-out, delete, reassign, rotate.
