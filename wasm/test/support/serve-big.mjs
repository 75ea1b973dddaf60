// A child process serving one user with one big message (node serve-big.mjs MEGABYTES), so the
// server's copy of the message is not in the memory of the client under test. Prints the port
// and the expected length and SHA-256 of what RETR delivers.

import { Maildrop } from 'popwire/server';
import { startServer } from './pop-server.mjs';
import { bigMessage } from './corpus.mjs';
import { wireDigest } from './exercise.mjs';

const maildrop = new Maildrop();
maildrop.addUser('big', 'big-pw');
const message = bigMessage(Number(process.argv[2]) * 1024 * 1024);
maildrop.addMessage(message);
// The digest is computed here so that the client's process never holds the message.
const digest = wireDigest(message);
const { port } = await startServer(maildrop, { options: { allowCleartextPassword: true } });
process.stdout.write(`${JSON.stringify({ port, ...digest })}\n`);
// Serve until the parent closes our stdin.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
