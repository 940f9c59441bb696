import {createInterface} from 'node:readline/promises';

/** Prompts need a person: both stdin and stderr must be terminals. */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY) && !process.env.CI;
}

export async function ask(question: string): Promise<string> {
  const rl = createInterface({input: process.stdin, output: process.stderr});
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}

export async function confirm(question: string): Promise<boolean> {
  const answer = await ask(`${question} [y/N] `);
  return /^y(es)?$/i.test(answer);
}
