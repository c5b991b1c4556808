// The live event stream. EventSource cannot send an Authorization header, so this reads
// /api/v1/events/stream with fetch and parses Server-Sent Events from the body's stream. It
// starts at the feed's end (after=now): the first message is a heartbeat whose id is the start
// cursor. After a drop it reconnects with Last-Event-ID, so no event is missed or repeated.

import { session } from './api.js';

/**
 * Follows the stream. onEvent(event) gets each change event; onState('live' | 'reconnecting' |
 * 'off', detail) tells whether it is connected. Returns a function that stops it.
 */
export function follow(query, onEvent, onState) {
  const controller = new AbortController();
  let lastId = null;
  let delay = 1000;

  async function run() {
    while (!controller.signal.aborted) {
      try {
        const headers = { Accept: 'text/event-stream', Authorization: `Bearer ${session.token}` };
        if (lastId) headers['Last-Event-ID'] = lastId;
        const response = await fetch(`/api/v1/events/stream?after=now${query ? '&' + query : ''}`, {
          headers, signal: controller.signal, credentials: 'omit', cache: 'no-store',
        });
        if (response.status === 401 || response.status === 403) {
          onState('off', response.status === 403 ? 'This token may not read the event stream.' : 'Signed out.');
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        await read(response.body, message => {
          if (message.id !== null) lastId = message.id;
          if (message.event === 'heartbeat') {
            delay = 1000;
            onState('live');
          } else if (message.data) {
            onEvent(JSON.parse(message.data));
          }
        });
      } catch (error) {
        if (controller.signal.aborted) return;
        console.warn('event stream dropped', error);
      }
      if (controller.signal.aborted) return;
      onState('reconnecting');
      await new Promise(resolve => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }

  run();
  return () => controller.abort();
}

/** Parses text/event-stream (https://html.spec.whatwg.org/#event-stream-interpretation). */
async function read(body, dispatch) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let message = { event: 'message', data: [], id: null };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r\n|\r|\n/)) >= 0) {
      // A lone \r at the end of a chunk may be the first half of \r\n: wait for more.
      if (buffer[end] === '\r' && end === buffer.length - 1) break;
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + (buffer.startsWith('\r\n', end) ? 2 : 1));
      if (line === '') {
        if (message.data.length > 0 || message.id !== null) {
          dispatch({ event: message.event, data: message.data.join('\n'), id: message.id });
        }
        message = { event: 'message', data: [], id: null };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let text = colon < 0 ? '' : line.slice(colon + 1);
      if (text.startsWith(' ')) text = text.slice(1);
      if (field === 'data') message.data.push(text);
      else if (field === 'event') message.event = text;
      else if (field === 'id') message.id = text;
    }
  }
}
