//! Client transactions: requests deskline itself sends (NOTIFY to phones) and the matching of the
//! responses that come back, by the branch of our Via (RFC 3261 §17.1.3). A response that matches
//! nothing is dropped.

use dashmap::DashMap;
use tokio::sync::mpsc;

use super::headers::Via;
use super::message::RawMessage;

#[derive(Default)]
pub struct ClientTransactions {
    pending: DashMap<String, mpsc::UnboundedSender<RawMessage>>,
}

impl ClientTransactions {
    /// Starts waiting for responses to the request sent with `branch`.
    pub fn start(&self, branch: &str) -> mpsc::UnboundedReceiver<RawMessage> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.pending.insert(branch.to_owned(), tx);
        rx
    }

    pub fn finish(&self, branch: &str) {
        self.pending.remove(branch);
    }

    /// Routes a received response to its transaction.
    pub fn on_response(&self, raw: RawMessage) {
        let branch = raw
            .headers
            .get("Via")
            .and_then(|v| Via::parse_list(v).ok())
            .and_then(|vias| vias.into_iter().next())
            .and_then(|via| via.branch);
        let Some(branch) = branch else { return };
        if let Some(tx) = self.pending.get(branch.as_str()) {
            let _ = tx.send(raw);
        }
    }
}
