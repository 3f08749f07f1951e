import type { BuildOptions } from 'esbuild';
export declare const BANNER: string;
export declare const NODE_BUNDLE_OPTIONS: BuildOptions;
