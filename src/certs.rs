//! Development certificates: the server CA, the server certificate, the device CA and device certificates.
