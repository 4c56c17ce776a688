/**
 * A synthetic embedding corpus shaped like real sentence embeddings: topics, subtopics
 * around each topic, and documents that vary along a few directions of their topic (a
 * low intrinsic dimension, as measured for text embeddings) plus a little noise in
 * every dimension. Uniform noise in all 384 dimensions, the obvious generator, makes
 * every document of a subtopic almost exactly as far from a query as the others: a
 * corpus of near-ties that no real model produces, where recall measures luck.
 *
 * Seeded, so every run searches the same corpus with the same queries.
 *
 * @example
 * const corpus = new Corpus(384);
 * await loadCorpus(sql, 'tenant_ab12', tenantId, corpus, 100_000);
 * const { vector, cluster } = corpus.document(corpus.randomSubtopic());
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Sql } from '../../src/db/connect.ts';

const TOPICS = 100;
const SUBTOPICS = 20;
/** Directions a document of a topic varies along (its intrinsic dimension). */
const LATENT = 16;
const SUBTOPIC_SPREAD = 0.35;
const LATENT_SPREAD = 0.07;
const NOISE = 0.05;

export class Corpus {
  readonly topics = TOPICS;
  private state: number;
  private readonly subtopics: Float32Array[] = [];
  private readonly bases: Float32Array[][] = [];

  constructor(
    readonly dimensions: number,
    seed = 20261130,
  ) {
    this.state = seed;
    for (let t = 0; t < TOPICS; t++) {
      const centre = this.gaussianVector(1);
      this.bases.push(Array.from({ length: LATENT }, () => this.gaussianVector(1)));
      for (let s = 0; s < SUBTOPICS; s++) this.subtopics.push(centre.map((x) => x + this.gaussian() * SUBTOPIC_SPREAD));
    }
  }

  get subtopicCount(): number {
    return this.subtopics.length;
  }

  randomSubtopic(): number {
    return Math.floor(this.random() * this.subtopics.length);
  }

  /** A new document of the subtopic, with its topic (the `cluster` metadata). */
  document(subtopic: number): { vector: number[]; cluster: number } {
    const topic = Math.floor(subtopic / SUBTOPICS);
    const v = Float32Array.from(this.subtopics[subtopic]!);
    for (const direction of this.bases[topic]!) {
      const z = this.gaussian() * LATENT_SPREAD;
      for (let i = 0; i < v.length; i++) v[i]! += z * direction[i]!;
    }
    for (let i = 0; i < v.length; i++) v[i]! += this.gaussian() * NOISE;
    return { vector: Array.from(v, (x) => Math.round(x * 1e4) / 1e4), cluster: topic };
  }

  /** mulberry32: small, fast and good enough for test data. */
  private random(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  private gaussian(): number {
    return Math.sqrt(-2 * Math.log(1 - this.random())) * Math.cos(2 * Math.PI * this.random());
  }

  private gaussianVector(scale: number): Float32Array {
    return Float32Array.from({ length: this.dimensions }, () => this.gaussian() * scale);
  }
}

/** `rows` documents (round-robin over subtopics) streamed into the tenant's embeddings with COPY. */
export async function loadCorpus(
  sql: Sql,
  schema: string,
  tenantId: string,
  corpus: Corpus,
  rows: number,
): Promise<void> {
  let n = 0;
  const lines = Readable.from(
    (function* () {
      for (; n < rows; n++) {
        const { vector, cluster } = corpus.document(n % corpus.subtopicCount);
        yield `${tenantId}\tdocument ${n}\t{"cluster": ${cluster}}\t[${vector.join(',')}]\n`;
      }
    })(),
  );
  const sink = await sql
    .unsafe(`copy "${schema}".embeddings (tenant_id, content, metadata, embedding) from stdin`)
    .writable();
  await pipeline(lines, sink);
}
