//! A deadline on receiving a request's body (`server.request_timeout`), so a client that
//! sends one byte every half minute cannot hold a connection: past the deadline the request
//! gets 408 and the connection is closed. Headers have their own limit (actix's
//! `client_request_timeout`). A request whose handler answers without reading the whole
//! body is answered with `Connection: close`, so no unread body is drained afterwards.

use std::cell::{Cell, RefCell};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::HttpMessage;
use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use futures_core::Stream;
use std::future::Future;

use super::AppState;
use super::problem::problem_response;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    Reading,
    Done,
    TimedOut,
}

/// The request's body, ending in an error once the deadline passes.
struct Deadline {
    /// Shared with the middleware: see [`UnreadBody`].
    inner: Rc<RefCell<Payload>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    progress: Rc<Cell<Progress>>,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.progress.get() == Progress::TimedOut {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut *self.inner.borrow_mut()).poll_next(cx);
        match polled {
            Poll::Ready(None) => {
                self.progress.set(Progress::Done);
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Pending => match self.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.progress.set(Progress::TimedOut);
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

/// A response body that keeps the unread rest of the request's body alive until it has
/// been sent: actix then closes the connection after the response instead of draining the
/// rest (which a chunked body sent slowly could make last for ever).
struct KeepUnread<B> {
    body: B,
    _unread: Rc<RefCell<Payload>>,
}

impl<B: MessageBody + Unpin> MessageBody for KeepUnread<B> {
    type Error = B::Error;

    fn size(&self) -> actix_web::body::BodySize {
        self.body.size()
    }

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Self::Error>>> {
        Pin::new(&mut self.body).poll_next(cx)
    }
}

/// `res` with `Connection: close`, sent while the unread body is kept alive.
fn closing<B: MessageBody + Unpin + 'static>(
    res: ServiceResponse<B>,
    unread: Rc<RefCell<Payload>>,
) -> ServiceResponse<BoxBody> {
    let mut res = res.map_body(|_, body| BoxBody::new(KeepUnread { body, _unread: unread }));
    res.response_mut()
        .head_mut()
        .set_connection_type(actix_web::http::ConnectionType::Close);
    res
}

/// Puts [`Deadline`] on a request's body, and answers 408 (closing the connection) when it
/// passes.
pub async fn request_deadline(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + Unpin + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let payload = req.take_payload();
    let timeout = match (&payload, req.app_data::<web::Data<AppState>>()) {
        (Payload::None, _) | (_, None) => None,
        (_, Some(state)) => Some(state.request_timeout),
    };
    let Some(timeout) = timeout else {
        req.set_payload(payload);
        return next.call(req).await.map(ServiceResponse::map_into_left_body);
    };
    let progress = Rc::new(Cell::new(Progress::Reading));
    let body = Rc::new(RefCell::new(payload));
    let stream = Deadline {
        inner: Rc::clone(&body),
        sleep: Box::pin(tokio::time::sleep(timeout)),
        progress: Rc::clone(&progress),
    };
    req.set_payload(Payload::from(
        Box::pin(stream) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    let res = next.call(req).await?;
    match progress.get() {
        Progress::Done => Ok(res.map_into_left_body()),
        Progress::TimedOut => {
            let answer = problem_response(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} seconds (server.request_timeout)",
                    timeout.as_secs()
                ),
            );
            Ok(closing(res.into_response(answer), body).map_into_right_body())
        }
        Progress::Reading => {
            // Answered before the whole body came: do not wait for the rest.
            Ok(closing(res, body).map_into_right_body())
        }
    }
}
