// Polls one POP3 mailbox from a cron trigger and stores each message in R2, exactly once:
// a message is deleted from the server only after its R2 put succeeded and its UID was
// recorded in the Durable Object. The Durable Object runs the poll, so two cron runs never
// fetch the same mailbox at once.
//
// Order per message: RETR → R2 put (key from the UID) → record the UID → DELE; QUIT commits the
// deletions. A run that dies after the put stores the same key again next time (an overwrite,
// not a second copy); one that dies after the record only deletes the message next time.

import { DurableObject } from 'cloudflare:workers';
import { Client } from 'popwire';

export class Mailbox extends DurableObject {
  #polling = false;

  /** One poll of the mailbox; returns what it did. */
  async poll() {
    // Awaiting the network lets another request into the object: keep polls apart.
    if (this.#polling) return { skipped: 'a poll is already running' };
    this.#polling = true;
    try {
      return await this.#poll();
    } finally {
      this.#polling = false;
    }
  }

  async #poll() {
    const env = this.env;
    // Each R2 put is a subrequest (50 per invocation on the free plan, 1000 paid): take at most
    // MAX_MESSAGES per run, and the next cron run takes the rest.
    const limit = Number(env.MAX_MESSAGES ?? 40);
    // A Worker has 128 MB of memory; larger messages stay on the server (and in the report).
    const maxBytes = Number(env.MAX_MESSAGE_BYTES ?? 32 * 1024 * 1024);
    const prefix = env.R2_PREFIX ?? `${env.POP_USER}@${env.POP_HOST}/`;
    const client = await Client.connect({
      host: env.POP_HOST,
      port: Number(env.POP_PORT ?? 995),
      security: env.POP_SECURITY ?? 'tls',
      timeout: 30_000,
    });
    const report = { stored: 0, deleted: 0, tooLarge: [], left: 0 };
    try {
      await client.login(env.POP_USER, env.POP_PASSWORD);
      const sizes = new Map((await client.list()).map((e) => [e.number, e.size]));
      const deleted = [];
      for (const { number, uid } of await client.uidl()) {
        const seen = `uid:${uid}`;
        if ((await this.ctx.storage.get(seen)) === undefined) {
          if (report.stored >= limit) {
            report.left++;
            continue;
          }
          if (sizes.get(number) > maxBytes) {
            report.tooLarge.push(uid);
            continue;
          }
          const message = await client.retr(number);
          await env.MAIL.put(`${prefix}${encodeURIComponent(uid)}.eml`, message, {
            httpMetadata: { contentType: 'message/rfc822' },
            customMetadata: { uid },
          });
          await this.ctx.storage.put(seen, Date.now());
          report.stored++;
        }
        await client.dele(number);
        deleted.push(seen);
      }
      await client.quit();
      // QUIT committed the deletions: those UIDs will not come back (RFC 1939 never reuses one).
      for (let i = 0; i < deleted.length; i += 128) await this.ctx.storage.delete(deleted.slice(i, i + 128)); // 128 keys a call
      report.deleted = deleted.length;
      return report;
    } catch (e) {
      client.close(); // no QUIT: nothing marked is deleted; the next run sees the UIDs
      throw e;
    }
  }
}

export default {
  async scheduled(controller, env) {
    const mailbox = env.MAILBOX.get(env.MAILBOX.idFromName(`${env.POP_USER}@${env.POP_HOST}`));
    try {
      console.log(JSON.stringify({ cron: controller.cron, ...(await mailbox.poll()) }));
    } catch (e) {
      // Into the Worker's logs; rethrown so the run counts as failed. The next run retries.
      console.error(`poll failed: ${e.name}: ${e.message}`);
      throw e;
    }
  },
};
