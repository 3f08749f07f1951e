export declare const ACTIONS: string[];
export declare function inputsTable(action: { inputs?: Record<string, { description?: string; required?: boolean; default?: unknown }> }): string;
export declare function outputsTable(action: { outputs?: Record<string, { description?: string }> }): string;
export declare function renderReadme(readme: string, actionYmlText: string): string;
