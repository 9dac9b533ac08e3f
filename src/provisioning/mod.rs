//! HTTPS provisioning: phones fetch their configs here.
