//! The provisioning server's view of the directory: builds the `DeviceView` a template needs from
//! a device, its user and the running listeners, and records fetches and uploads. Provisioning
//! itself never touches the directory; this adapter is the one place that joins them.

use std::sync::Arc;

use crate::config::Config;
use crate::directory::store::{Completion, StoreOp};
use crate::directory::{ConfigFetchRecord, Directory, Mac, UserStatus};
use crate::events::{Event, EventBus};
use crate::provisioning::backend::{ConfigFetch, ProvisioningBackend};
use crate::provisioning::view::{DeviceState, DeviceView, LineView};

pub struct DirectoryBackend {
    pub config: Arc<Config>,
    pub directory: Arc<Directory>,
    pub events: EventBus,
    /// The registrar address and port written into configs, for the configured transport.
    pub registrar_host: String,
    pub registrar_port: u16,
}

fn vendor_from(name: Option<&str>) -> Option<crate::provisioning::vendor::Vendor> {
    let name = name?.to_ascii_lowercase();
    crate::provisioning::vendor::Vendor::ALL.into_iter().find(|v| name.contains(v.as_str()))
}

impl ProvisioningBackend for DirectoryBackend {
    fn device_view(&self, mac: &Mac) -> Option<DeviceView> {
        let device = self.directory.device(mac)?;
        let user = device.user.as_deref().and_then(|u| self.directory.user(u));
        let (state, user) = match (user, &device.extension) {
            (Some(u), Some(_)) if u.status == UserStatus::Active => (DeviceState::Active, Some(u)),
            (Some(u), Some(_)) => (DeviceState::Suspended, Some(u)),
            _ => (DeviceState::Unassigned, None),
        };
        let line = user.map(|u| {
            let extension = device.extension.clone().unwrap_or_default();
            LineView {
                label: format!("{extension} {}", u.display_name),
                display_name: u.display_name.clone(),
                extension,
                auth_user: device.credentials.username.clone(),
                secret: device.credentials.secret.expose().to_owned(),
                registrar_host: self.registrar_host.clone(),
                registrar_port: self.registrar_port,
                transport: self.config.provisioning.sip_transport.clone(),
                expires: self.config.sip.default_expires,
            }
        });
        let mut view = DeviceView::new(&self.config.provisioning, mac.clone(), state, line);
        view.vendor = vendor_from(device.vendor.as_deref());
        view.model = device.model.clone();
        Some(view)
    }

    fn provisioning_secret(&self, mac: &Mac) -> Option<String> {
        self.directory.device(mac).map(|d| d.provisioning_secret.expose().to_owned())
    }

    fn record_fetch(&self, mac: &Mac, fetch: ConfigFetch) {
        let record = ConfigFetchRecord {
            at: crate::events::now_rfc3339(),
            address: fetch.address.to_string(),
            user_agent: fetch.user_agent.clone(),
            file: fetch.file.clone(),
        };
        let vendor = fetch.vendor.map(|v| v.as_str().to_owned());
        let carries_state = fetch.carries_state();
        match self.directory.record_fetch(
            mac,
            record,
            carries_state,
            vendor.clone(),
            fetch.model.clone(),
            fetch.firmware.clone(),
        ) {
            Ok(was_pending) => {
                if self.events.has_listeners() {
                    let mut e = Event::new("config_fetched")
                        .with("mac", mac.to_string())
                        .with("file", fetch.file)
                        .with("source", fetch.address.to_string());
                    if let Some(v) = vendor {
                        e = e.with("vendor", v);
                    }
                    self.events.publish(e);
                }
                if was_pending {
                    self.events
                        .publish(Event::new("resync_done").with("mac", mac.to_string()).with("via", "config_fetch"));
                }
            }
            Err(e) => tracing::warn!(%mac, error = %e, "config fetch not recorded"),
        }
    }

    fn store_upload(&self, mac: &Mac, file_name: &str, body: &[u8]) -> Result<(), String> {
        let op = StoreOp::PutUpload {
            mac: mac.to_string(),
            name: file_name.to_owned(),
            at: crate::events::now_rfc3339(),
            body: body.to_vec(),
        };
        self.directory.store().submit(vec![op], Completion::None);
        Ok(())
    }
}
