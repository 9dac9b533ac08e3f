//! The expectation table: what a registrar answers to each torture corpus file on UDP and TCP,
//! condensed from `tests/data/sip-torture/MANIFEST.md`, with the outcomes the manifest also allows.

/// What the server should do with one message on one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Out {
    /// A final response with this status (and the headers that status needs).
    Status(u16),
    /// Nothing within NO_ANSWER_WAIT (responses, which a registrar drops).
    NoAnswer,
    /// TCP framing error: the connection is closed, with or without a 400 first.
    CloseOr400,
    /// TCP: no answer (the message is not complete yet), then the connection is closed when
    /// nothing more arrives (idle timeout).
    WaitThenClose,
    /// TCP: the message never completes (no end of header section); no answer while we wait.
    Incomplete,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Out::Status(c) => write!(f, "{c}"),
            Out::NoAnswer => f.write_str("no answer"),
            Out::CloseOr400 => f.write_str("close (400 optional)"),
            Out::WaitThenClose => f.write_str("wait, then close"),
            Out::Incomplete => f.write_str("no answer (incomplete)"),
        }
    }
}

/// One corpus file's expectations.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// Path under `tests/data/sip-torture/`.
    pub(crate) file: &'static str,
    /// The manifest's class.
    pub(crate) class: &'static str,
    /// None: not sent over UDP (Via cannot be rewritten sanely: missing, or the Via's own
    /// `received` is what the file tests).
    pub(crate) udp: Option<Out>,
    pub(crate) tcp: Out,
    /// Outcomes the manifest also allows (liberal acceptance / an alternative code), with a note.
    pub(crate) alts: &'static [(Out, &'static str)],
}

const fn row(file: &'static str, class: &'static str, both: Out) -> Row {
    Row { file, class, udp: Some(both), tcp: both, alts: &[] }
}

const fn row_alt(file: &'static str, class: &'static str, both: Out, alts: &'static [(Out, &'static str)]) -> Row {
    Row { file, class, udp: Some(both), tcp: both, alts }
}

const fn row_split(file: &'static str, class: &'static str, udp: Out, tcp: Out) -> Row {
    Row { file, class, udp: Some(udp), tcp, alts: &[] }
}

const fn row_tcp(file: &'static str, class: &'static str, tcp: Out) -> Row {
    Row { file, class, udp: None, tcp, alts: &[] }
}

use Out::*;

const LIBERAL_405: &[(Out, &str)] = &[(Status(405), "liberal accept (INVITE processed: 405)")];

/// MANIFEST.md, condensed to what a registrar (not a proxy, not a UA for INVITE) answers.
pub(crate) fn expectations() -> Vec<Row> {
    vec![
        // ---- RFC 4475 §3.1.1: valid messages ----
        row("rfc4475/wsinv.dat", "VALID", Status(405)),
        row("rfc4475/intmeth.dat", "VALID", Status(501)),
        row("rfc4475/esc01.dat", "VALID", Status(405)),
        row("rfc4475/escnull.dat", "VALID", Status(401)),
        row("rfc4475/esc02.dat", "VALID", Status(501)),
        row("rfc4475/lwsdisp.dat", "VALID", Status(200)),
        row("rfc4475/longreq.dat", "VALID", Status(405)),
        // UDP: the trailing INVITE must be ignored (checked: one answer only). TCP: it is the next
        // message on the stream; only the first answer is judged.
        row("rfc4475/dblreq.dat", "VALID", Status(401)),
        row("rfc4475/semiuri.dat", "VALID", Status(200)),
        row("rfc4475/transports.dat", "VALID", Status(200)),
        row("rfc4475/mpart01.dat", "VALID", Status(405)),
        row("rfc4475/unreason.dat", "VALID", NoAnswer),
        row("rfc4475/noreason.dat", "VALID", NoAnswer),
        // ---- RFC 4475 §3.1.2: invalid messages ----
        row("rfc4475/badinv01.dat", "INVALID", Status(400)),
        row_split("rfc4475/clerr.dat", "INVALID", Status(400), WaitThenClose),
        row_split("rfc4475/ncl.dat", "INVALID", Status(400), CloseOr400),
        row("rfc4475/scalar02.dat", "INVALID", Status(400)),
        row("rfc4475/scalarlg.dat", "INVALID", NoAnswer),
        row("rfc4475/quotbal.dat", "INVALID", Status(400)),
        row_alt("rfc4475/ltgtruri.dat", "INVALID (liberal accept allowed)", Status(400), LIBERAL_405),
        row_alt("rfc4475/lwsruri.dat", "INVALID (liberal accept allowed)", Status(400), LIBERAL_405),
        row_alt("rfc4475/lwsstart.dat", "INVALID (liberal accept allowed)", Status(400), LIBERAL_405),
        row_alt(
            "rfc4475/trws.dat",
            "INVALID (liberal accept allowed)",
            Status(400),
            &[(Status(200), "liberal accept (OPTIONS processed: 200)")],
        ),
        row_alt("rfc4475/escruri.dat", "INVALID (liberal accept allowed)", Status(400), LIBERAL_405),
        row_alt("rfc4475/baddate.dat", "INVALID (liberal accept allowed)", Status(400), LIBERAL_405),
        row_alt(
            "rfc4475/regbadct.dat",
            "INVALID (liberal accept allowed)",
            Status(400),
            &[(Status(401), "liberal accept (REGISTER processed: 401)")],
        ),
        row_alt(
            "rfc4475/badaspec.dat",
            "INVALID (liberal accept allowed)",
            Status(400),
            &[(Status(200), "liberal accept (OPTIONS processed: 200)")],
        ),
        // Archive defect: no empty line ends the header section. A datagram ends there anyway;
        // on a stream the message is simply not complete.
        row_split("rfc4475/baddn.dat", "INVALID", Status(400), Incomplete),
        row("rfc4475/badvers.dat", "INVALID", Status(505)),
        row("rfc4475/mismatch01.dat", "INVALID", Status(400)),
        row_alt("rfc4475/mismatch02.dat", "INVALID", Status(501), &[(Status(400), "400 (RFC: acceptable)")]),
        row("rfc4475/bigcode.dat", "INVALID", NoAnswer),
        // ---- RFC 4475 §3.2, §3.3 ----
        row_alt(
            "rfc4475/badbranch.dat",
            "VALID SYNTAX",
            Status(200),
            &[(Status(400), "strict: 400 for branch=z9hG4bK with nothing after the cookie")],
        ),
        row("rfc4475/insuf.dat", "INVALID (semantic)", Status(400)),
        row("rfc4475/unkscm.dat", "VALID SYNTAX", Status(416)),
        row_alt(
            "rfc4475/novelsc.dat",
            "VALID SYNTAX",
            Status(416),
            &[(Status(404), "404 (RFC: when the scheme could be meaningful)")],
        ),
        row("rfc4475/unksm2.dat", "VALID SYNTAX", Status(400)),
        row("rfc4475/bext01.dat", "VALID SYNTAX", Status(420)),
        row_alt("rfc4475/invut.dat", "VALID SYNTAX", Status(405), &[(Status(415), "415 (an endpoint serving INVITE)")]),
        row("rfc4475/regaut01.dat", "VALID SYNTAX", Status(401)),
        row("rfc4475/multi01.dat", "INVALID (semantic)", Status(400)),
        row_split("rfc4475/mcl01.dat", "INVALID (framing)", Status(400), CloseOr400),
        row("rfc4475/bcast.dat", "VALID SYNTAX", NoAnswer),
        row("rfc4475/zeromf.dat", "VALID", Status(200)),
        row("rfc4475/cparam01.dat", "VALID", Status(401)),
        row("rfc4475/cparam02.dat", "VALID", Status(401)),
        row("rfc4475/regescrt.dat", "VALID", Status(401)),
        row_alt(
            "rfc4475/sdp01.dat",
            "VALID SYNTAX",
            Status(405),
            &[(Status(406), "406 (an endpoint serving INVITE)"), (Status(400), "400 (RFC: acceptable)")],
        ),
        // No Content-Length: over UDP the body is the rest of the datagram; on a stream a missing
        // Content-Length is a framing error (registrar.md, "Transports and framing").
        row_split("rfc4475/inv2543.dat", "VALID (compat)", Status(405), CloseOr400),
        // No Via at all (and no SIP-Version): nothing to rewrite, so TCP only.
        row_tcp("rfc4475/test.dat", "UNREFERENCED", CloseOr400),
        // ---- RFC 5118 (wire forms) ----
        row("rfc5118/wire/ipv6-good.dat", "VALID", Status(401)),
        row("rfc5118/wire/ipv6-bad.dat", "INVALID", Status(400)),
        // [2001:db8::10:5070] is another address (no port): not this registrar.
        row("rfc5118/wire/port-ambiguous.dat", "VALID (semantically surprising)", Status(404)),
        row("rfc5118/wire/port-unambiguous.dat", "VALID", Status(401)),
        // The top Via's `received` is what these two test: sent unchanged, over TCP only.
        row_tcp("rfc5118/wire/via-received-param-with-delim.dat", "VALID (liberal)", Status(405)),
        row_tcp("rfc5118/wire/via-received-param-no-delim.dat", "VALID", Status(200)),
        row("rfc5118/wire/ipv6-in-sdp.dat", "VALID", Status(405)),
        row("rfc5118/wire/mult-ip-in-header.dat", "VALID", Status(405)),
        row("rfc5118/wire/mult-ip-in-sdp.dat", "VALID", Status(405)),
        row("rfc5118/wire/ipv4-mapped-ipv6.dat", "VALID", Status(405)),
        row_alt(
            "rfc5118/wire/ipv6-bug-abnf-3-colons.dat",
            "VALID (tolerate)",
            Status(200),
            &[(Status(400), "strict RFC 5954 reading: 400")],
        ),
        row("rfc5118/wire/ipv6-correct-abnf-2-colons.dat", "VALID", Status(200)),
        // ---- ours ----
        row("variants/baddn-crlf-fixed.dat", "INVALID", Status(400)),
    ]
}
