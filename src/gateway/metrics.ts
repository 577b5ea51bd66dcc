/** Prometheus metrics of a gateway, served at /metrics. */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly sockets = new Gauge({ name: 'parley_gateway_sockets', help: 'Open WebSocket connections', labelNames: ['mode'], registers: [this.registry] });
  readonly messages = new Counter({ name: 'parley_gateway_messages_total', help: 'Messages accepted from clients', registers: [this.registry] });
  readonly rejected = new Counter({ name: 'parley_gateway_rejected_frames_total', help: 'Client frames rejected, by error code', labelNames: ['code'], registers: [this.registry] });
  readonly pauses = new Counter({ name: 'parley_gateway_socket_pauses_total', help: 'Times a socket stopped reading because its unprocessed input grew too large', registers: [this.registry] });
  readonly sessions = new Counter({ name: 'parley_gateway_sessions_created_total', help: 'Sessions created', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
