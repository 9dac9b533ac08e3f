//! The provisioning server's view of the rest of deskline: the trait the application implements
//! over its directory (provisioning never depends on the directory itself), and the record of
//! one fetch.

use std::net::SocketAddr;

use crate::directory::mac::Mac;
use crate::provisioning::vendor::{classify, FileRequest, Vendor};
use crate::provisioning::view::DeviceView;

pub trait ProvisioningBackend: Send + Sync + 'static {
    /// Everything the templates need for this MAC, or None when the MAC is unknown.
    fn device_view(&self, mac: &Mac) -> Option<DeviceView>;
    /// The per-device HTTP digest secret (provisioning password), if the device has one.
    fn provisioning_secret(&self, mac: &Mac) -> Option<String>;
    /// Records a successful fetch (time, source address, UA, firmware, file); clears "resync
    /// pending"; emits `config_fetched`.
    fn record_fetch(&self, mac: &Mac, fetch: ConfigFetch);
    /// Stores a Poly upload.
    fn store_upload(&self, mac: &Mac, file_name: &str, body: &[u8]) -> Result<(), String>;
}

/// One successful fetch of a device's file (also a `304 Not Modified`: the phone checked in and
/// holds the current config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFetch {
    pub address: SocketAddr,
    pub user_agent: Option<String>,
    pub vendor: Option<Vendor>,
    pub model: Option<String>,
    pub firmware: Option<String>,
    /// The file name as requested (`805ec0a1b2c3.cfg`).
    pub file: String,
}

impl ConfigFetch {
    /// True when the fetched file carries the device's state (Yealink `<mac>.cfg`, Poly
    /// `<MAC>-deskline.cfg`, Cisco/Snom/Grandstream XML), not a boot, master or index file: the
    /// fetch that shows a resync has reached the phone.
    pub fn carries_state(&self) -> bool {
        match (classify(&format!("/{}", self.file), None), self.vendor) {
            (FileRequest::Device { file, .. }, Some(vendor)) => file.carries_state(vendor),
            _ => false,
        }
    }
}
