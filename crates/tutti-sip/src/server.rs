//! The SIP server: listeners, the endpoint, and the dispatch of requests to calls.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rsipstack::dialog::dialog_layer::DialogLayer;
use rsipstack::sip::prelude::HeadersExt;
use rsipstack::sip::{Header, Method, StatusCode};
use rsipstack::transaction::transaction::Transaction;
use rsipstack::transport::tcp_listener::TcpListenerConnection;
use rsipstack::transport::udp::UdpConnection;
use rsipstack::transport::TransportLayer;
use rsipstack::EndpointBuilder;
use tokio_util::sync::CancellationToken;
use tutti_conference::ConferenceService;

use crate::config::SipConfig;
use crate::digest::DigestAuthority;
use crate::session_timer::TimerLimits;
use crate::{call, SipError};

/// The methods tutti answers, as its `Allow` header lists them.
pub(crate) const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";

/// Counters of the SIP server.
#[derive(Debug, Default)]
pub struct SipCounters {
    /// INVITEs that started a call.
    pub calls_answered: AtomicU64,
    /// INVITEs refused (any final status other than 2xx, challenges excluded).
    pub calls_refused: AtomicU64,
    /// Digest challenges sent.
    pub challenges: AtomicU64,
    /// Requests refused as malformed (400).
    pub malformed: AtomicU64,
    /// Calls up now.
    pub active_calls: AtomicU64,
}

impl SipCounters {
    /// Stores the counters with the `metrics` macros (`tutti_sip_*`), in the recorder in force.
    pub fn record(&self) {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        metrics::describe_counter!(
            "tutti_sip_calls_total",
            "SIP INVITEs by outcome (answered, refused, challenged)."
        );
        metrics::describe_counter!(
            "tutti_sip_malformed_total",
            "SIP requests refused as malformed (400)."
        );
        metrics::describe_gauge!("tutti_sip_active_calls", "SIP calls up now.");
        for (outcome, counter) in [
            ("answered", &self.calls_answered),
            ("refused", &self.calls_refused),
            ("challenged", &self.challenges),
        ] {
            metrics::counter!("tutti_sip_calls_total", "outcome" => outcome).absolute(get(counter));
        }
        metrics::counter!("tutti_sip_malformed_total").absolute(get(&self.malformed));
        metrics::gauge!("tutti_sip_active_calls").set(get(&self.active_calls) as f64);
    }
}

/// What every call task shares.
pub(crate) struct Context {
    pub(crate) config: SipConfig,
    pub(crate) service: Arc<ConferenceService>,
    pub(crate) dialogs: Arc<DialogLayer>,
    pub(crate) digest: DigestAuthority,
    pub(crate) contact: rsipstack::sip::Uri,
    pub(crate) limits: TimerLimits,
    pub(crate) counters: Arc<SipCounters>,
    pub(crate) stopping: CancellationToken,
    /// Dial-out calls still ringing, by call id, for a CANCEL.
    pub(crate) ringing: std::sync::Mutex<
        std::collections::HashMap<uuid::Uuid, rsipstack::dialog::invite_dialog::InviteDialog>,
    >,
}

/// A running SIP server.
pub struct SipServer {
    stop: CancellationToken,
    stopping: CancellationToken,
    counters: Arc<SipCounters>,
    local: Vec<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl SipServer {
    /// Opens the listeners (UDP and TCP on `listen`, TLS when configured) and starts answering.
    pub async fn start(
        config: SipConfig,
        service: Arc<ConferenceService>,
    ) -> Result<Self, SipError> {
        let stop = CancellationToken::new();
        let transport = TransportLayer::new(stop.clone());
        let listen_error = |error: rsipstack::Error| SipError::Listen {
            address: config.listen,
            reason: error.to_string(),
        };
        let counters = Arc::new(SipCounters::default());
        let socket = std::net::UdpSocket::bind(config.listen)
            .and_then(|socket| {
                socket.set_nonblocking(true)?;
                tokio::net::UdpSocket::from_std(socket)
            })
            .map_err(|error| SipError::Listen {
                address: config.listen,
                reason: error.to_string(),
            })?;
        let guarded = crate::guarded_socket::GuardedSocket::new(socket, counters.clone());
        let udp = UdpConnection::from_socket(Arc::new(guarded), None, Some(stop.child_token()))
            .await
            .map_err(listen_error)?;
        // UDP may have been given port 0: TCP listens on the port UDP got.
        let udp_address = udp.get_addr().get_socketaddr().map_err(listen_error)?;
        transport.add_transport(udp.into());
        let tcp_address = SocketAddr::new(config.listen.ip(), udp_address.port());
        let tcp = TcpListenerConnection::new(tcp_address, None)
            .await
            .map_err(|error| SipError::Listen {
                address: tcp_address,
                reason: error.to_string(),
            })?;
        transport.add_transport(tcp.into());
        let mut local = vec![udp_address];
        if let Some(tls) = &config.tls {
            local.push(crate::tls::listen(&transport, tls).await?);
        }
        let endpoint = EndpointBuilder::new()
            .with_cancel_token(stop.clone())
            .with_transport_layer(transport)
            .with_user_agent(concat!("tutti/", env!("CARGO_PKG_VERSION")))
            .with_inspector(Box::new(crate::source::SourceStamp))
            .build();
        let incoming = endpoint.incoming_transactions()?;
        let dialogs = Arc::new(DialogLayer::new(endpoint.inner.clone()));
        let contact_address = config.contact_address();
        let contact = rsipstack::sip::Uri::try_from(
            format!(
                "sip:tutti@{}",
                SocketAddr::new(contact_address, udp_address.port())
            )
            .as_str(),
        )
        .map_err(|error| SipError::Uri(error.to_string()))?;
        let stopping = CancellationToken::new();
        let context = Arc::new(Context {
            digest: DigestAuthority::new(&config.realm, config.digest_sha256),
            limits: TimerLimits {
                session_expires: config.session_expires_seconds,
                min_se: config.min_session_expires_seconds,
            },
            config,
            service,
            dialogs,
            contact,
            counters: counters.clone(),
            stopping: stopping.clone(),
            ringing: Default::default(),
        });
        context.service.set_sip_realm(&context.config.realm);
        context
            .service
            .set_dialer(Arc::new(crate::dial_out::SipDialer::new(
                context.clone(),
                tokio::runtime::Handle::current(),
            )));
        let endpoint_task = tokio::spawn(async move { endpoint.serve().await });
        let dispatch = tokio::spawn(dispatch(context.clone(), incoming));
        tracing::info!(address = %udp_address, "SIP listening on UDP and TCP");
        Ok(Self {
            stop,
            stopping,
            counters,
            local,
            tasks: vec![endpoint_task, dispatch],
        })
    }

    /// Where it listens: UDP and TCP first, then TLS when configured.
    pub fn local_addresses(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Its counters.
    pub fn counters(&self) -> Arc<SipCounters> {
        self.counters.clone()
    }

    /// Ends every call with a BYE, then closes the listeners.
    pub async fn shutdown(self) {
        self.stopping.cancel();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
        while self.counters.active_calls.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        self.stop.cancel();
        for task in self.tasks {
            task.abort();
        }
    }
}

/// Hands each new request to what handles it.
async fn dispatch(
    context: Arc<Context>,
    mut incoming: rsipstack::transaction::TransactionReceiver,
) {
    while let Some(mut tx) = incoming.recv().await {
        if let Err(refusal) = crate::inspect::framing(&tx.original) {
            context.counters.malformed.fetch_add(1, Ordering::Relaxed);
            if tx.original.method != Method::Ack {
                tokio::spawn(async move { refuse(&mut tx, refusal.status, &refusal.reason).await });
            }
            continue;
        }
        let in_dialog = tx
            .original
            .to_header()
            .ok()
            .and_then(|to| to.tag().ok().flatten())
            .is_some();
        if in_dialog {
            match context.dialogs.match_dialog(&tx) {
                Some(mut dialog) => {
                    tokio::spawn(async move {
                        if let Err(error) = dialog.handle(&mut tx).await {
                            tracing::debug!(%error, "in-dialog request failed");
                        }
                    });
                }
                None if tx.original.method == Method::Ack => {}
                None => {
                    tokio::spawn(async move {
                        let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                    });
                }
            }
            continue;
        }
        match tx.original.method {
            Method::Invite => {
                tokio::spawn(call::incoming_invite(context.clone(), tx));
            }
            Method::Options => {
                tokio::spawn(async move {
                    let _ = tx.reply_with(StatusCode::OK, capabilities(), None).await;
                });
            }
            Method::Ack => {}
            Method::Cancel | Method::Bye | Method::Info | Method::Update => {
                tokio::spawn(async move {
                    let _ = tx.reply(StatusCode::CallTransactionDoesNotExist).await;
                });
            }
            _ => {
                tokio::spawn(async move {
                    let _ = tx
                        .reply_with(
                            StatusCode::MethodNotAllowed,
                            vec![Header::Other("Allow".into(), ALLOW.into())],
                            None,
                        )
                        .await;
                });
            }
        }
    }
}

/// What an OPTIONS answer says tutti can do.
pub(crate) fn capabilities() -> Vec<Header> {
    vec![
        Header::Other("Allow".into(), ALLOW.into()),
        Header::Other(
            "Accept".into(),
            "application/sdp, application/dtmf-relay, application/dtmf".into(),
        ),
        Header::Other("Supported".into(), "timer".into()),
    ]
}

/// Replies to a request outside any call with `status` and a `Warning` saying why.
pub(crate) async fn refuse(tx: &mut Transaction, status: StatusCode, reason: &str) {
    let warning = format!("399 tutti \"{}\"", reason.replace('"', "'"));
    let _ = tx
        .reply_with(status, vec![Header::Other("Warning".into(), warning)], None)
        .await;
}
