//! go-plugin's own services, which every plugin serves beside tfplugin6 (see
//! proto/go_plugin.proto): the controller that asks the plugin to exit, and the stdio stream.

use std::pin::Pin;

use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status};

use super::proto::go_plugin as gp;

/// GRPCController: Shutdown sets `exit`, which ends the server.
pub struct Controller {
    pub exit: watch::Sender<bool>,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        self.exit.send_replace(true);
        Ok(Response::new(gp::Empty {}))
    }
}

/// GRPCStdio: a stream without data that ends when the plugin exits. Our logs go to stderr,
/// which go-plugin reads directly; the stream only has to exist so that go-plugin does not
/// log it as missing, and it must end so that a graceful shutdown does not wait for it.
pub struct Stdio {
    pub exit: watch::Receiver<bool>,
}

type StdioStream = Pin<Box<dyn Stream<Item = Result<gp::StdioData, Status>> + Send>>;

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = StdioStream;

    async fn stream_stdio(&self, _: Request<()>) -> Result<Response<StdioStream>, Status> {
        let until_exit = WatchStream::new(self.exit.clone())
            .take_while(|exiting| !*exiting)
            .filter_map(|_| None::<Result<gp::StdioData, Status>>);
        Ok(Response::new(Box::pin(until_exit)))
    }
}
